// Evaluated just before axios (index.ts): ES modules run their imports in order, in one synchronous pass.
import { hideFetchClasses } from './fetch-globals.js';

hideFetchClasses();
