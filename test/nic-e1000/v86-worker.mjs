// The worker entry of v86-run.ts --e1000: Node 20 does not pass the parent's `--import tsx`
// loader hooks on to worker threads, so the worker registers tsx itself, then runs the runner.
import { register } from 'tsx/esm/api';

register();
await import('./v86-run.ts');
