import { Controller, Get, Headers, HttpCode, Patch, Post, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiPreconditionFailedResponse,
  ApiResponse,
  ApiTags,
  ApiOperation,
} from '@nestjs/swagger';
import { CurrentUser, Roles, ShedPriority, UuidParam, ValidBody, ValidQuery, ValidationFailedError, type AuthenticatedUser } from '@app/platform';
import type { FastifyReply } from 'fastify';
import { CatalogueService, type Product } from '../application/catalogue.service';
import { CreateProductRequest, PageQuery, ProductPage, ProductResponse, UpdateProductRequest } from './order.schemas';
import { parseIfMatch, productEtag } from './product-etag';

/** Products carry their version as an ETag (docs/api.md, "Catalogue"). */
const ETAG_HEADER = { ETag: { description: "The product's version, quoted (`\"3\"`): send it back as If-Match", schema: { type: 'string' } } };

function withEtag(reply: FastifyReply, product: Product): Product {
  void reply.header('etag', productEtag(product.version));
  return product;
}

@ApiTags('catalogue')
@ApiBearerAuth()
@Controller({ path: 'products', version: '1' })
export class ProductsController {
  constructor(private readonly catalogue: CatalogueService) {}

  @Get()
  @ShedPriority('sheddable')
  @ApiOkResponse({ schema: ProductPage as never })
  @ApiOperation({ operationId: 'listProducts', summary: 'List the catalogue', description: 'Keyset-paginated: pass `nextCursor` back as `cursor`.' })
  list(@CurrentUser() caller: AuthenticatedUser, @ValidQuery(PageQuery) query: PageQuery): Promise<{ items: Product[]; nextCursor: string | null }> {
    return this.catalogue.list(caller.userId, query.limit, query.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ schema: ProductResponse as never, description: 'With `ETag: "<version>"`', headers: ETAG_HEADER })
  @ApiNotFoundResponse({ description: 'No such product' })
  @ApiOperation({ operationId: 'getProduct', summary: 'Read one product', description: 'The `ETag` header is the product\'s version: send it back as `If-Match` to update it safely.' })
  async get(@UuidParam('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Product> {
    return withEtag(reply, await this.catalogue.get(id));
  }

  @Post()
  @Roles('admin')
  @HttpCode(201)
  @ApiCreatedResponse({ schema: ProductResponse as never, description: 'With its first `ETag`', headers: ETAG_HEADER })
  @ApiConflictResponse({ description: 'Duplicate SKU (case-insensitive)' })
  @ApiForbiddenResponse({ description: 'Admins only' })
  @ApiOperation({ operationId: 'createProduct', summary: 'Add a product to the catalogue' })
  async create(@ValidBody(CreateProductRequest) body: CreateProductRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<Product> {
    return withEtag(reply, await this.catalogue.create(body));
  }

  @Patch(':id')
  @Roles('admin')
  @ApiHeader({ name: 'If-Match', required: false, schema: { type: 'string' }, description: 'The ETag read before (or `*`); required when the body sets `stock`' })
  @ApiOkResponse({ schema: ProductResponse as never, description: 'With the new `ETag`', headers: ETAG_HEADER })
  @ApiNotFoundResponse({ description: 'No such product' })
  @ApiConflictResponse({ description: '`stockDelta` would take the stock below 0 or above 1 000 000 000' })
  @ApiPreconditionFailedResponse({ description: 'If-Match names no current version' })
  @ApiResponse({ status: 428, description: '`stock` (absolute) sent without If-Match' })
  @ApiOperation({ operationId: 'updateProduct', summary: 'Change a product (price, name, stock)', description: '`stockDelta` adds to the stock atomically; `stock` sets it and needs `If-Match` (428 without it, 412 when the product changed since it was read).' })
  async update(
    @UuidParam('id') id: string,
    @ValidBody(UpdateProductRequest) body: UpdateProductRequest,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Product> {
    if (body.stock !== undefined && body.stockDelta !== undefined) {
      throw new ValidationFailedError([{ field: 'stockDelta', message: 'cannot be combined with stock' }]);
    }
    return withEtag(reply, await this.catalogue.update(id, body, parseIfMatch(ifMatch)));
  }
}
