import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import pino from 'pino';
import { PlatformModule } from '@app/platform';
import { DOMAIN_MODULE_CATALOGUE } from '../../apps/api/src/modules';
import { createTestDatabase, testConfig } from '../support/test-env';

const only = process.env.ONLY ? process.env.ONLY.split(',') : Object.keys(DOMAIN_MODULE_CATALOGUE);
it.each(Array.from({ length: 8 }, (_, i) => i))('boots and closes %i', async () => {
  const db = await createTestDatabase();
  const app = await Test.createTestingModule({
    imports: [PlatformModule.forRoot(testConfig(db), pino({ level: 'silent' })), ...only.map((k) => DOMAIN_MODULE_CATALOGUE[k as 'users'].module)],
  }).compile();
  await app.init();
  await new Promise((r) => setTimeout(r, Number(process.env.SLEEP ?? 0)));
  await app.close();
}, 60_000);
