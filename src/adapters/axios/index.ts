/**
 * axios, as the GLPI and Zabbix clients use it: import it from here, never from 'axios' directly
 * (test/unit/axios-loading.test.ts checks both).
 *
 * Loaded as is, axios reads Node's fetch classes to pick its fetch adapter, and that first read loads Node's
 * whole fetch implementation (undici): about 2 MB more heap in the processing thread, for an adapter the
 * bridge never uses (axios takes its http adapter in Node). Issue 16 counts every megabyte of the daemon's
 * resident memory. So the classes read as undefined while axios loads, and are put back right after: ES
 * modules evaluate these three imports in this order, in one synchronous pass (nothing else runs between
 * them), and fetch still works for any code that calls it later (it loads undici then).
 */
import './hide-fetch.js';
import axios from 'axios';
import './restore-fetch.js';

export default axios;
export type { AxiosInstance, Method } from 'axios';
