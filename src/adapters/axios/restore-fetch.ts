// Evaluated just after axios (index.ts).
import { restoreFetchClasses } from './fetch-globals.js';

restoreFetchClasses();
