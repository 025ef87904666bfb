import { createHash, timingSafeEqual } from 'node:crypto';

/** Who may sign in: user name → password. */
export type Users = Readonly<Record<string, string>>;

/** User names are ids of a sort: they show in logs and own rows, so they are kept plain. */
const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const MAX_PASSWORD_LENGTH = 1024;

/** What is wrong with a users list, or undefined when it is usable. */
export function usersProblem(users: Users): string | undefined {
  const names = Object.keys(users);
  if (names.length === 0) return 'auth needs at least one user';
  for (const name of names) {
    if (!USER_NAME.test(name)) return `user name "${name}" must be 1 to 64 of A-Z a-z 0-9 . _ @ -`;
    const password = users[name];
    if (typeof password !== 'string' || password === '') return `user "${name}" has an empty password`;
    if (password.length > MAX_PASSWORD_LENGTH) return `user "${name}" has a password over ${MAX_PASSWORD_LENGTH} characters`;
  }
  return undefined;
}

// `name:password`, split at the first colon: passwords may contain colons, names may not.
function addEntry(users: Record<string, string>, entry: string, where: string): void {
  const colon = entry.indexOf(':');
  if (colon <= 0) throw new Error(`${where}: "${entry.length > 40 ? `${entry.slice(0, 40)}…` : entry}" is not name:password`);
  const name = entry.slice(0, colon);
  if (Object.hasOwn(users, name)) throw new Error(`${where}: user "${name}" is listed twice`);
  users[name] = entry.slice(colon + 1);
}

function checked(users: Record<string, string>, where: string): Users {
  const problem = usersProblem(users);
  if (problem !== undefined) throw new Error(`${where}: ${problem}`);
  return users;
}

/** `--users alice:pw1,bob:pw2` (a password cannot contain a comma here; use a file for that). */
export function parseUsersList(list: string): Users {
  const users: Record<string, string> = Object.create(null);
  for (const entry of list.split(',')) addEntry(users, entry, '--users');
  return checked(users, '--users');
}

/**
 * A users file: a JSON object `{"alice": "pw1"}`, or one `name:password` per
 * line (blank lines and lines starting with `#` are skipped).
 */
export function parseUsersFile(text: string, path: string): Users {
  const where = `--users-file ${path}`;
  const users: Record<string, string> = Object.create(null);
  if (text.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${where}: not valid JSON (expected {"name": "password", ...})`);
    }
    for (const [name, password] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof password !== 'string') throw new Error(`${where}: the password of "${name}" must be a string`);
      users[name] = password;
    }
    return checked(users, where);
  }
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    addEntry(users, line, `${where} line ${i + 1}`);
  });
  return checked(users, where);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * True when `user` exists and `password` is theirs. Compared as digests in
 * constant time, and an unknown user costs the same compare, so timing tells
 * neither passwords nor which names exist.
 */
export function passwordMatches(users: Users, user: string, password: string): boolean {
  const known = Object.hasOwn(users, user);
  const expected = digest(known ? (users[user] as string) : '\0unknown user');
  return timingSafeEqual(digest(password), expected) && known;
}
