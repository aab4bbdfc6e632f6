/**
 * The admin list's cursor: where the previous page ended, as `<part>.<beganAtMs>.<xid>` —
 * `1` for the in-doubt part, `0` for the rest; the transaction's begin time in ms; its xid.
 * Clients pass `nextCursor` back as it is; the node seeks to it (a binary search), so a page
 * neither skips nor repeats transactions that others begin, finish or forget meanwhile.
 */
export const cursorPattern = /^[01]\.(0|[1-9][0-9]{0,14})\.[A-Za-z0-9_-]{1,64}$/;

export interface Cursor {
  readonly inDoubt: boolean;
  readonly beganAtMs: number;
  readonly xid: string;
}

/** A cursor that matched `cursorPattern`. */
export function parseCursor(text: string): Cursor {
  const [part, ms, xid] = text.split(".");
  return { inDoubt: part === "1", beganAtMs: Number(ms), xid: xid ?? "" };
}

export function formatCursor(c: Cursor): string {
  return `${c.inDoubt ? 1 : 0}.${c.beganAtMs}.${c.xid}`;
}
