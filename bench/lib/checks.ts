/** A correctness check of a run: the bench exits 1 when one fails (lost or duplicated writes, a figure not measured). */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
