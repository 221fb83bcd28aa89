import { Controller, Get, Headers, HttpCode, Inject, Optional, Post, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { CurrentUser, Roles, ShedPriority, UuidParam, ValidBody, ValidQuery, ValidationFailedError, type AuthenticatedUser } from '@app/platform';
import { USERS_FACADE, type UserSummary, type UsersFacade } from '@app/users/contracts';
import type { FastifyReply } from 'fastify';
import { IdempotentOrderPlacement } from '../application/idempotent-order-placement';
import { OrderLifecycleService } from '../application/order-lifecycle.service';
import { toOrderResponse, type OrderResponse as OrderBody } from '../application/order-response';
import { PlaceOrderService } from '../application/place-order.service';
import type { OrderAction } from '../domain/order-status';
import { ListOrdersQuery, OrderPage, OrderResponse, PlaceOrderRequest } from './order.schemas';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function rejectDuplicateLines(body: PlaceOrderRequest): void {
  const seen = new Set<string>();
  const errors = body.items.flatMap((line, index) => {
    if (seen.has(line.productId)) return [{ field: `items[${index}].productId`, message: 'duplicates an earlier line' }];
    seen.add(line.productId);
    return [];
  });
  if (errors.length) throw new ValidationFailedError(errors);
}

@ApiTags('orders')
@ApiBearerAuth()
@Controller({ path: 'orders', version: '1' })
export class OrdersController {
  constructor(
    private readonly placeOrder: PlaceOrderService,
    private readonly idempotent: IdempotentOrderPlacement,
    private readonly lifecycle: OrderLifecycleService,
    // Optional: where `users` runs elsewhere without a facade here, admins see no name.
    @Optional() @Inject(USERS_FACADE) private readonly users?: UsersFacade,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiHeader({ name: 'Idempotency-Key', required: false, schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' }, description: 'Scoped to the user, kept 24 h. Same key + same body replays the first response; different body → 422; concurrent repeat → 409.' })
  @ApiCreatedResponse({
    schema: OrderResponse as never,
    headers: { 'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } } },
  })
  @ApiConflictResponse({ description: 'Insufficient stock (type ends in insufficient-stock), or the same Idempotency-Key is still in flight' })
  @ApiNotFoundResponse({ description: 'A product of the order does not exist (ORDER.PRODUCT_NOT_FOUND)' })
  @ApiUnprocessableEntityResponse({ description: 'Products in different currencies (ORDER.MIXED_CURRENCY), or the Idempotency-Key reused with a different body' })
  @ApiOperation({ operationId: 'placeOrder', summary: 'Place an order', description: 'Priced from the catalogue. Send an `Idempotency-Key` to retry safely.' })
  async place(
    @CurrentUser() caller: AuthenticatedUser,
    @ValidBody(PlaceOrderRequest) body: PlaceOrderRequest,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    rejectDuplicateLines(body);
    if (key === undefined) return toOrderResponse(await this.placeOrder.place(caller.userId, body.items));
    if (!IDEMPOTENCY_KEY.test(key)) throw new ValidationFailedError([{ field: 'Idempotency-Key', message: 'must be 1-255 visible ASCII characters' }]);
    const result = await this.idempotent.place(caller.userId, key, body, body.items);
    void reply.status(result.status);
    if (result.replayed) void reply.header('idempotent-replayed', 'true');
    if (result.status >= 400) void reply.header('content-type', 'application/problem+json; charset=utf-8');
    return result.body;
  }

  @Get()
  @ApiOkResponse({ schema: OrderPage as never })
  @ApiOperation({ operationId: 'listOrders', summary: 'List your orders' })
  async list(@CurrentUser() caller: AuthenticatedUser, @ValidQuery(ListOrdersQuery) query: ListOrdersQuery): Promise<{ items: OrderBody[]; nextCursor: string | null }> {
    const page = await this.lifecycle.list(caller.userId, query.limit, query.status as never, query.cursor);
    return { items: page.items.map(toOrderResponse), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOkResponse({ schema: OrderResponse as never, description: 'Admins also get `customer` ({ id, name } or null once erased), read through UsersFacade' })
  @ApiNotFoundResponse({ description: "No such order, or another customer's (ORDER.NOT_FOUND)" })
  @ApiOperation({ operationId: 'getOrder', summary: 'Read one of your orders', description: 'Admins may read anyone\'s.' })
  async get(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<OrderBody & { customer?: Pick<UserSummary, 'id' | 'name'> | null }> {
    const order = toOrderResponse(await this.lifecycle.get(id, caller));
    if (caller.role !== 'admin' || !this.users) return order;
    const customer = await this.users.findUser(order.userId);
    return { ...order, customer: customer ? { id: customer.id, name: customer.name } : null };
  }

  // Writes to an order already under way are critical: shedding them strands held stock
  // and half-finished orders (README, "What is shed first"). Placing a new order is normal.
  @Post(':id/cancel')
  @ShedPriority('critical')
  @HttpCode(200)
  @ApiOkResponse({ schema: OrderResponse as never })
  @ApiConflictResponse({ description: 'Already shipped, delivered, cancelled or expired' })
  @ApiNotFoundResponse({ description: "No such order, or another customer's (ORDER.NOT_FOUND)" })
  @ApiOperation({ operationId: 'cancelOrder', summary: 'Cancel an order' })
  cancel(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<OrderBody> {
    return this.move(id, 'cancel', caller);
  }

  @Post(':id/confirm')
  @ShedPriority('critical')
  @Roles('admin')
  @HttpCode(200)
  @ApiOkResponse({ schema: OrderResponse as never })
  @ApiConflictResponse({ description: 'The order is not in a state this step follows (ORDER.ILLEGAL_TRANSITION)' })
  @ApiNotFoundResponse({ description: 'No such order (ORDER.NOT_FOUND)' })
  @ApiOperation({ operationId: 'confirmOrder', summary: 'Confirm a pending order' })
  confirm(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<OrderBody> {
    return this.move(id, 'confirm', caller);
  }

  @Post(':id/ship')
  @ShedPriority('critical')
  @Roles('admin')
  @HttpCode(200)
  @ApiOkResponse({ schema: OrderResponse as never })
  @ApiConflictResponse({ description: 'The order is not in a state this step follows (ORDER.ILLEGAL_TRANSITION)' })
  @ApiNotFoundResponse({ description: 'No such order (ORDER.NOT_FOUND)' })
  @ApiOperation({ operationId: 'shipOrder', summary: 'Mark a confirmed order shipped' })
  ship(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<OrderBody> {
    return this.move(id, 'ship', caller);
  }

  @Post(':id/deliver')
  @ShedPriority('critical')
  @Roles('admin')
  @HttpCode(200)
  @ApiOkResponse({ schema: OrderResponse as never })
  @ApiConflictResponse({ description: 'The order is not in a state this step follows (ORDER.ILLEGAL_TRANSITION)' })
  @ApiNotFoundResponse({ description: 'No such order (ORDER.NOT_FOUND)' })
  @ApiOperation({ operationId: 'deliverOrder', summary: 'Mark a shipped order delivered' })
  deliver(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<OrderBody> {
    return this.move(id, 'deliver', caller);
  }

  private async move(id: string, action: OrderAction, caller: AuthenticatedUser): Promise<OrderBody> {
    const reason = action === 'cancel' ? (caller.role === 'admin' ? 'admin' : 'customer') : undefined;
    return toOrderResponse(await this.lifecycle.transition(id, action, caller, reason));
  }
}
