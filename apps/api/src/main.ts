import './compile-cache';
import './tracing';
import 'reflect-metadata';
import { startHttpService } from '@app/platform';
import { API_SERVICE } from './api.app';

startHttpService(API_SERVICE);
