#!/usr/bin/env node
// Node 22.18+ runs TypeScript directly (type stripping), so the CLI needs no build step.
import '../src/cli/main.ts';
