import { execFileSync } from 'node:child_process';
import { findPids } from './proc.ts';

/**
 * BENCH_PIN=1: the load generator and stand-ins (this process) on core 0, the services, Redis and
 * Postgres on core 1, so the figures say what the services cost, not what the harness stole from
 * them. Redis and Postgres are shared with other users of the machine: their affinity is put
 * back when the run ends. Needs taskset (util-linux) and the right to set other processes' affinity.
 */
export const PIN = process.env.BENCH_PIN === '1';
export const BENCH_CORE = '0';
export const SERVICE_CORE = '1';

/** Prefix for spawning a service on the services' core (empty when not pinning). */
export function pinnedCommand(): string[] {
  return PIN ? ['taskset', '-c', SERVICE_CORE] : [];
}

function affinity(pid: number): string | null {
  try {
    return execFileSync('taskset', ['-p', '-c', String(pid)]).toString().split(':').pop()!.trim();
  } catch {
    return null; // gone meanwhile
  }
}

function setAffinity(pid: number, cores: string): void {
  try {
    // -a: every thread (Redis's I/O threads, node's workers).
    execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
  } catch {
    // gone meanwhile, or not ours to move
  }
}

/** Pins this process and the shared Redis and Postgres; returns what puts their affinity back. */
export function pinShared(): () => void {
  if (!PIN) return () => {};
  const before = new Map<number, string>();
  setAffinity(process.pid, BENCH_CORE);
  for (const pid of [...findPids('redis-server'), ...findPids('postgres')]) {
    const cores = affinity(pid);
    if (cores === null) continue;
    before.set(pid, cores);
    // New Postgres backends are forked from the postmaster and inherit its (now pinned) affinity.
    setAffinity(pid, SERVICE_CORE);
  }
  return () => {
    for (const [pid, cores] of before) setAffinity(pid, cores);
    for (const pid of findPids('postgres')) if (!before.has(pid)) setAffinity(pid, before.values().next().value ?? '0,1');
  };
}
