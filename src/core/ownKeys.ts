/**
 * Plain objects keyed by user strings (class names, labels, split names, config keys) without prototype surprises.
 *
 * `obj[key] = v` with key `__proto__` replaces the object's prototype instead of adding a key, and `key in obj` or
 * `obj[key]` find inherited members such as `constructor` or `toString`. Objects that cross the JSON boundary (report,
 * config) stay plain objects; these helpers make every write an own data property and every read an own lookup.
 */

/** Adds (or replaces) the own enumerable property `key`, even for `__proto__`. */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Whether `key` is an own property of `obj` (not inherited). */
export function hasOwn(obj: object | undefined | null, key: string): boolean {
  return obj !== undefined && obj !== null && Object.prototype.hasOwnProperty.call(obj, key);
}

/** The own property `key` of `obj`, or undefined (never an inherited member). */
export function getOwn<T>(obj: Readonly<Record<string, T>> | undefined | null, key: string): T | undefined {
  return hasOwn(obj, key) ? (obj as Record<string, T>)[key] : undefined;
}

/** An object from [key, value] pairs, every key an own property (like Object.fromEntries, which is also safe). */
export function ownRecord<T>(entries: Iterable<readonly [string, T]>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of entries) setOwn(out, k, v);
  return out;
}
