import { SseLiveStream, type Row } from 'vantage-live';
import { connectLiveTable, hostLiveStream, keepFlushing, requestPersistence } from 'vantage-live/page';

export interface Product extends Row {
  name: string;
  price: number;
}

/** The worker's products table; calls wait until the worker is ready. */
export const products = connectLiveTable<Product>('products');

export function startLive(): void {
  void navigator.serviceWorker.register('/sw.js');
  keepFlushing(); // forwards `online`, nudges a stopped worker while writes wait
  hostLiveStream('products', (lastEventId) => new SseLiveStream('/api/products/events', { lastEventId }));
  void requestPersistence(); // ask the browser not to evict the queue
}
