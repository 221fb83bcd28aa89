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
} from '@nestjs/swagger';
import { CurrentUser, Roles, ShedPriority, UuidParam, ValidBody, ValidQuery, ValidationFailedError, type AuthenticatedUser } from '@app/platform';
import type { FastifyReply } from 'fastify';
import { CatalogueService, type Product } from '../application/catalogue.service';
import { CreateProductRequest, PageQuery, ProductPage, ProductResponse, UpdateProductRequest } from './order.schemas';
import { parseIfMatch, productEtag } from './product-etag';

/** Products carry their version as an ETag (docs/api.md, "Catalogue"). */
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
  list(@CurrentUser() caller: AuthenticatedUser, @ValidQuery(PageQuery) query: PageQuery): Promise<{ items: Product[]; nextCursor: string | null }> {
    return this.catalogue.list(caller.userId, query.limit, query.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ schema: ProductResponse as never, description: 'With `ETag: "<version>"`' })
  @ApiNotFoundResponse({ description: 'No such product' })
  async get(@UuidParam('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Product> {
    return withEtag(reply, await this.catalogue.get(id));
  }

  @Post()
  @Roles('admin')
  @HttpCode(201)
  @ApiCreatedResponse({ schema: ProductResponse as never })
  @ApiConflictResponse({ description: 'Duplicate SKU (case-insensitive)' })
  @ApiForbiddenResponse({ description: 'Admins only' })
  async create(@ValidBody(CreateProductRequest) body: CreateProductRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<Product> {
    return withEtag(reply, await this.catalogue.create(body));
  }

  @Patch(':id')
  @Roles('admin')
  @ApiHeader({ name: 'If-Match', required: false, description: 'The ETag read before; required when the body sets `stock`' })
  @ApiOkResponse({ schema: ProductResponse as never, description: 'With the new `ETag`' })
  @ApiConflictResponse({ description: '`stockDelta` would take the stock below 0 or above 1 000 000 000' })
  @ApiPreconditionFailedResponse({ description: 'If-Match names no current version' })
  @ApiResponse({ status: 428, description: '`stock` (absolute) sent without If-Match' })
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
