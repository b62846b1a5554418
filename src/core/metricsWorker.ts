/**
 * Helper thread for the metric and label-issue computations (see parallel.ts): loads the modules that define the
 * jobs, then runs the units of the jobs posted to it. Bundled as dist/metricsWorker.js.
 */
import { parentPort } from 'node:worker_threads';
import { serveJobs } from './parallel';
import './metrics';
import './labelIssues';
import './streamedBlockJob';
import './outlierJobs';

if (parentPort) serveJobs(parentPort);
