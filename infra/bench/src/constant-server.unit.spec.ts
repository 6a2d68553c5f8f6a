/**
 * @jest-environment-options {"database": false}
 */
import { constantBody } from './constant-server';

describe('constant server', () => {
  test('its answer is a JSON text of exactly the size asked for', () => {
    for (const bytes of [24, 100, 3072]) {
      const body = constantBody(bytes);
      expect(Buffer.byteLength(body)).toBe(bytes);
      expect(JSON.parse(body)).toEqual({ data: { constant: expect.any(String) } });
    }
  });
});
