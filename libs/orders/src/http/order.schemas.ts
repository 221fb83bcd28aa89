import { Type, type Static } from '@sinclair/typebox';

const Uuid = Type.String({ format: 'uuid' });
const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20 });
const Cursor = Type.Optional(Type.String({ minLength: 1, maxLength: 200 }));
const OrderStatus = Type.Union(['pending', 'confirmed', 'shipped', 'delivered', 'cancelled', 'expired'].map((s) => Type.Literal(s)));

/** Prices are never accepted from the client: `unitPriceCents` in a line is a 400. */
export const PlaceOrderRequest = Type.Object(
  {
    items: Type.Array(
      Type.Object({ productId: Uuid, quantity: Type.Integer({ minimum: 1, maximum: 1000 }) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 100 },
    ),
  },
  { additionalProperties: false, $id: 'PlaceOrderRequest' },
);
export type PlaceOrderRequest = Static<typeof PlaceOrderRequest>;

export const ListOrdersQuery = Type.Object({ limit: Limit, cursor: Cursor, status: Type.Optional(OrderStatus) }, { additionalProperties: false });
export type ListOrdersQuery = Static<typeof ListOrdersQuery>;

export const PageQuery = Type.Object({ limit: Limit, cursor: Cursor }, { additionalProperties: false });
export type PageQuery = Static<typeof PageQuery>;

const OrderLine = Type.Object({ productId: Uuid, sku: Type.String(), name: Type.String(), quantity: Type.Integer(), unitPriceCents: Type.Integer() });
export const OrderResponse = Type.Object(
  {
    id: Uuid,
    userId: Uuid,
    status: OrderStatus,
    items: Type.Array(OrderLine),
    totalCents: Type.Integer(),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time', description: 'When a pending order expires' }),
  },
  { $id: 'OrderResponse' },
);
export const OrderPage = Type.Object({ items: Type.Array(OrderResponse), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { $id: 'OrderPage' });

const Sku = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const ProductName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
const Price = Type.Integer({ minimum: 0, maximum: 100_000_000 });
const Stock = Type.Integer({ minimum: 0, maximum: 1_000_000_000 });

export const CreateProductRequest = Type.Object(
  { sku: Sku, name: ProductName, priceCents: Price, currency: Type.String({ pattern: '^[A-Z]{3}$', default: 'EUR' }), stock: Stock },
  { additionalProperties: false, $id: 'CreateProductRequest' },
);
export type CreateProductRequest = Static<typeof CreateProductRequest>;

export const UpdateProductRequest = Type.Object(
  {
    name: Type.Optional(ProductName),
    priceCents: Type.Optional(Price),
    stock: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Absolute level; needs If-Match (428 without it)' })),
    stockDelta: Type.Optional(Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, description: 'Added to the current stock atomically' })),
  },
  { additionalProperties: false, minProperties: 1, $id: 'UpdateProductRequest' },
);
export type UpdateProductRequest = Static<typeof UpdateProductRequest>;

export const ProductResponse = Type.Object(
  {
    id: Uuid,
    sku: Sku,
    name: Type.String(),
    priceCents: Type.Integer(),
    currency: Type.String(),
    stock: Type.Integer(),
    version: Type.Integer({ description: 'Grows with every change, stock included; the ETag is its quoted value' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'ProductResponse' },
);
export const ProductPage = Type.Object({ items: Type.Array(ProductResponse), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { $id: 'ProductPage' });
