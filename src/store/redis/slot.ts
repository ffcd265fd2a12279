// Redis Cluster hash slots: CRC16 (XMODEM) of a key's hash tag, or of the whole key, modulo 16384.

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/**
 * The slot Redis Cluster serves `key` from (the Redis Cluster specification, "Keys hash tags"):
 * when the key has a `{…}` with at least one character between the first `{` and the next `}`,
 * only that part is hashed, so `a:{orders:42}` and `b:{orders:42}` share a slot.
 */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(key, 'utf8');
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc & 16383;
}
