/** The real-process cluster used by the tests is the one the benchmark scripts use. */
export { LocalCluster as ProcessCluster, freePort, waitFor, type NodeStatus } from '../../src/bench/cluster.js';
