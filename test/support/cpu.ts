// Linear-time guards measure the CPU time this process spent, not the wall clock: a test file runs
// alone in its own process (vitest's forks pool), so its CPU time does not grow when another job
// shares the cores, as wall time did (a 1 s scan took 2.05 s next to a valgrind run).

/** What `fn` returned (awaited) and the milliseconds of CPU (user + system, all threads of this process) it took. */
export async function withCpuTime<T>(fn: () => T | Promise<T>): Promise<{ value: T; ms: number }> {
  const before = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(before);
  return { value, ms: (used.user + used.system) / 1000 };
}
