// Ordinary code that surrounds the samples: it must produce no finding on its own.
export const FILLER: string[] = [
  `import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff: float = 0.5

    def delays(self):
        return [self.backoff * (2 ** i) for i in range(self.attempts)]`,
  `export async function fetchJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(url, { ...init, headers: { accept: 'application/json', ...init.headers } });
  if (!res.ok) throw new Error(\`\${res.status} \${res.statusText} for \${url}\`);
  return (await res.json()) as T;
}`,
  `func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]string{"status": "ok"}); err != nil {
		s.log.Error("encode health", "err", err)
	}
}`,
  `public List<Order> findRecent(int limit) {
    return jdbc.query("SELECT id, total, created_at FROM orders ORDER BY created_at DESC LIMIT ?",
        (rs, i) -> new Order(rs.getLong("id"), rs.getBigDecimal("total"), rs.getTimestamp("created_at")),
        limit);
}`,
  `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:1.14.2
          ports:
            - containerPort: 8080`,
  `SELECT u.id, u.email, count(o.id) AS orders
FROM users u
LEFT JOIN orders o ON o.user_id = u.id
WHERE u.created_at > now() - interval '30 days'
GROUP BY u.id, u.email
ORDER BY orders DESC;`,
  `#!/usr/bin/env bash
set -euo pipefail
for f in "$@"; do
  echo "linting $f"
  shellcheck "$f"
done`,
  `const router = express.Router();
router.get('/users/:id', async (req, res, next) => {
  try {
    const user = await users.findById(req.params.id);
    if (!user) return res.status(404).json({ error: 'not found' });
    res.json(user);
  } catch (err) {
    next(err);
  }
});`,
  `class LRUCache<K, V> {
  private map = new Map<K, V>();
  constructor(private readonly capacity: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }
}`,
  `def tokenize(text: str) -> list[str]:
    """Split on whitespace and punctuation; keep apostrophes inside words."""
    return re.findall(r"[\\w']+|[^\\w\\s]", text)`,
  `{
  "name": "@acme/web",
  "version": "2.3.1",
  "scripts": { "build": "vite build", "test": "vitest run" },
  "dependencies": { "react": "^18.3.1", "zod": "^3.23.8" }
}`,
  `resource "aws_s3_bucket" "logs" {
  bucket = "acme-prod-logs"
  tags = {
    team = "platform"
  }
}`,
  `#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub listen: SocketAddr,
    pub workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { listen: "0.0.0.0:8080".parse().unwrap(), workers: num_cpus::get() }
    }
}`,
  `FROM node:20-slim AS build
WORKDIR /app
COPY package*.json ./
RUN npm ci
COPY . .
RUN npm run build`,
  `<dependency>
  <groupId>org.postgresql</groupId>
  <artifactId>postgresql</artifactId>
  <version>42.7.3</version>
</dependency>`,
  `    @Test
    void rejectsExpiredSessions() {
        var session = new Session(Instant.parse("2020-01-01T00:00:00Z"));
        assertThrows(SessionExpired.class, () -> guard.check(session, clock));
    }`,
  `  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);`,
];
