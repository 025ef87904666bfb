import type { ChangeEvent, Owner, Storage } from './storage/types.js';
import type { Row } from './validate.js';

/** The table every seed writes to. */
export const SEED_TABLE = 'products';

/** The three rows `--seed` and `POST /admin/seed` load. */
export const SAMPLE_PRODUCTS: readonly Row[] = [
  { id: 'a', name: 'Apple Pie', price: 12 },
  { id: 'b', name: 'Brioche', price: 8 },
  { id: 'c', name: 'Cinnamon Roll', price: 15 },
];

const FLAVOURS = ['Almond', 'Butter', 'Cherry', 'Date', 'Espresso', 'Fig', 'Ginger', 'Hazelnut', 'Lemon', 'Maple'];
const BAKES = ['Croissant', 'Tart', 'Muffin', 'Scone', 'Bun', 'Cake', 'Cookie', 'Danish', 'Loaf'];

/** The n-th generated product (1-based); ids are zero padded so they sort like their order. */
export function generatedProduct(n: number): Row {
  const flavour = FLAVOURS[n % FLAVOURS.length] ?? 'Plain';
  const bake = BAKES[Math.floor(n / FLAVOURS.length) % BAKES.length] ?? 'Roll';
  return { id: `p${String(n).padStart(6, '0')}`, name: `${flavour} ${bake} #${n}`, price: 2 + ((n * 7) % 29) };
}

function* products(opts: { sample: boolean; rows: number }): Generator<Row> {
  if (opts.sample) yield* SAMPLE_PRODUCTS;
  for (let n = 1; n <= opts.rows; n++) yield generatedProduct(n);
}

/**
 * Replaces the products table of each owner (every user in auth mode) with
 * the sample rows and/or `rows` generated ones, one transaction each. Logged
 * as a single `changed` event per owner so live clients refetch instead of
 * replaying thousands of inserts.
 */
export async function seedEveryOwner(storage: Storage, owners: readonly Owner[], opts: { sample: boolean; rows: number }): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  for (const owner of owners) events.push(await storage.replaceTable(owner, SEED_TABLE, products(opts)));
  return events;
}
