import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../certs/', import.meta.url));

/** CA that signed the stand-ins' certificate; give it to processes as NODE_EXTRA_CA_CERTS. */
export const TEST_CA_PATH = `${dir}ca.crt`;

/** Certificate and key for a TLS server on localhost / 127.0.0.1 / ::1. */
export function testServerTls(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(`${dir}server.crt`), key: readFileSync(`${dir}server.key`) };
}
