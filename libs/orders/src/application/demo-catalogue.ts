import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { CatalogueService } from './catalogue.service';

const DEMO = [
  ['MUG-001', 'Enamel mug', 1200, 250],
  ['TEE-BLK-M', 'Black T-shirt (M)', 2500, 120],
  ['TEE-WHT-L', 'White T-shirt (L)', 2500, 80],
  ['CAP-NAVY', 'Navy cap', 1800, 60],
  ['BOTTLE-750', 'Steel bottle 750 ml', 2900, 150],
  ['NOTE-A5', 'A5 notebook', 900, 400],
  ['PEN-GEL', 'Gel pen', 300, 1000],
  ['TOTE-CAN', 'Canvas tote', 1500, 200],
  ['STICK-PACK', 'Sticker pack', 500, 500],
  ['HOOD-GRY-XL', 'Grey hoodie (XL)', 5500, 10],
] as const;

/** `npm run seed`: a demo catalogue, idempotent (existing SKUs are left alone). */
@Injectable()
export class DemoCatalogueSeeder {
  constructor(
    private readonly catalogue: CatalogueService,
    @InjectDataSource('orders') private readonly dataSource: DataSource,
  ) {}

  async seed(progress: (line: string) => void): Promise<number> {
    let created = 0;
    for (const [index, [sku, name, priceCents, stock]] of DEMO.entries()) {
      const exists = await this.dataSource.query('SELECT 1 FROM orders.products WHERE lower(sku) = lower($1)', [sku]);
      if (exists.length) {
        progress(`[${index + 1}/${DEMO.length}] ${sku} already in the catalogue`);
        continue;
      }
      const product = await this.catalogue.create({ sku, name, priceCents, currency: 'EUR', stock });
      created += 1;
      progress(`[${index + 1}/${DEMO.length}] ${sku} ${name}: ${(priceCents / 100).toFixed(2)} EUR, stock ${stock} (${product.id})`);
    }
    return created;
  }
}
