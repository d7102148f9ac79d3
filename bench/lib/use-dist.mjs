// `node --import tsx --import ./bench/lib/use-dist.mjs bench/NAME.ts`: the benchmark's own
// TypeScript runs through tsx, the code it measures from dist/ (see dist-hooks.mjs). Hooks
// registered later run first, so this one sees the URL tsx resolved a `../src/…` import to.
import { register } from 'node:module';

register('./dist-hooks.mjs', import.meta.url);
