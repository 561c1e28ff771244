export { createInlet, LIBRARY_DEFAULTS } from './create-inlet.js';
export type { CreateInletOptions, Inlet } from './create-inlet.js';
export type { FetchHandler } from './fetch-handler.js';
export type { NodeListener } from './node-listener.js';
export { HANDLER_DEFAULTS } from './handlers.js';
export type { Handler, HandlerContext, HandlerMessage, HandlerOptions } from './handlers.js';
