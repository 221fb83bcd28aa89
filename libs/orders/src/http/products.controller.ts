import { Controller, Get, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiConflictResponse, ApiCreatedResponse, ApiForbiddenResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Roles, ShedPriority, UuidParam, ValidBody, ValidQuery } from '@app/platform';
import { CatalogueService, type Product } from '../application/catalogue.service';
import { CreateProductRequest, PageQuery, ProductPage, ProductResponse, UpdateProductRequest } from './order.schemas';

@ApiTags('catalogue')
@ApiBearerAuth()
@Controller({ path: 'products', version: '1' })
export class ProductsController {
  constructor(private readonly catalogue: CatalogueService) {}

  @Get()
  @ShedPriority('sheddable')
  @ApiOkResponse({ schema: ProductPage as never })
  list(@ValidQuery(PageQuery) query: PageQuery): Promise<{ items: Product[]; nextCursor: string | null }> {
    return this.catalogue.list(query.limit, query.cursor);
  }

  @Post()
  @Roles('admin')
  @HttpCode(201)
  @ApiCreatedResponse({ schema: ProductResponse as never })
  @ApiConflictResponse({ description: 'Duplicate SKU (case-insensitive)' })
  @ApiForbiddenResponse({ description: 'Admins only' })
  create(@ValidBody(CreateProductRequest) body: CreateProductRequest): Promise<Product> {
    return this.catalogue.create(body);
  }

  @Patch(':id')
  @Roles('admin')
  @ApiOkResponse({ schema: ProductResponse as never })
  update(@UuidParam('id') id: string, @ValidBody(UpdateProductRequest) body: UpdateProductRequest): Promise<Product> {
    return this.catalogue.update(id, body);
  }
}
