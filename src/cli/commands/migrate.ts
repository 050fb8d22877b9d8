import { openStore } from '../../store/open-store.ts';
import type { CliOptions } from '../main.ts';

/** Open the store, creating what it needs (tables, pending migrations), and close it. */
export async function migrate(options: Pick<CliOptions, 'store'>): Promise<void> {
  const store = await openStore(options.store, { create: true });
  await store.close();
  process.stdout.write(`punctual: migrations applied to ${options.store}\n`);
}
