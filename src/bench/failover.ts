import { LocalCluster, quantile } from './cluster.js';

/**
 * Failover time: kill -9 of the leader, then the time until a write is accepted by the new
 * leader, over N runs (default 20) of a three-node cluster with default settings.
 */
const runs = Number(process.argv[2] ?? 20);
const times: number[] = [];
const cluster = new LocalCluster(['n1', 'n2', 'n3']);
await cluster.init();
for (const id of cluster.ids) cluster.start(id);
try {
  await cluster.leader();
  for (let run = 0; run < runs; run++) {
    const leader = await cluster.leader();
    // Let the cluster settle: every node up and the leader taking writes.
    await fetch(`${cluster.http(leader)}/v1/kv/settle?ack=all`, { method: 'PUT', body: 'x', signal: AbortSignal.timeout(10_000) });
    const started = performance.now();
    await cluster.kill(leader);
    const others = cluster.ids.filter((id) => id !== leader);
    let accepted = false;
    for (let attempt = 0; !accepted && performance.now() - started < 15_000; attempt++) {
      const target = others[attempt % others.length] as string;
      try {
        const response = await fetch(`${cluster.http(target)}/v1/kv/failover-${run}?ack=majority`, { method: 'PUT', body: 'y', signal: AbortSignal.timeout(1000) });
        accepted = response.status === 200;
        await response.text();
      } catch {
        // not yet
      }
      if (!accepted) await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - started;
    times.push(ms);
    process.stdout.write(`run ${run + 1}: ${accepted ? `${ms.toFixed(0)} ms` : 'no write accepted within 15 s'}\n`);
    cluster.start(leader);
  }
} finally {
  await cluster.stopAll();
}
times.sort((a, b) => a - b);
process.stdout.write(`failover (kill -9 leader -> first write accepted), ${times.length} runs: p50 ${quantile(times, 0.5).toFixed(0)} ms, max ${times[times.length - 1]?.toFixed(0)} ms\n`);
