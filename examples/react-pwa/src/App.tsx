import { useState, type FormEvent } from 'react';
import { useLivePage, useLiveStatus, useLiveWrite } from 'vantage-live/react';
import { products } from './live';

export function App() {
  return (
    <main>
      <h1>Products</h1>
      <StatusLine />
      <ProductList />
      <AddProduct />
    </main>
  );
}

function ProductList() {
  const { data, error, isLoading } = useLivePage(products, { page: 1, ipp: 100 });
  if (isLoading) return <p>Loading…</p>;
  if (!data) return <p role="alert">Could not load the products: {String(error)}</p>;
  return (
    <ul aria-label="products">
      {data.rows.map(([id, product]) => {
        const pending = data.pendingIds.includes(id);
        return (
          <li key={id} data-pending={pending}>
            {product.name}, {product.price} {pending && <em>(pending)</em>}
          </li>
        );
      })}
      {data.stale && <li role="note">These may be out of date.</li>}
    </ul>
  );
}

function AddProduct() {
  const { insertReturnId, isPending, error } = useLiveWrite(products);
  const [name, setName] = useState('');
  const [price, setPrice] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    // Resolves once the write is queued in the worker, online or not.
    const outcome = await insertReturnId({ name, price: Number(price) });
    if (outcome.ok) (setName(''), setPrice(''));
  };
  return (
    <form onSubmit={submit}>
      <input aria-label="name" value={name} onChange={(e) => setName(e.target.value)} required />
      <input aria-label="price" type="number" value={price} onChange={(e) => setPrice(e.target.value)} required />
      <button disabled={isPending}>Add</button>
      {error !== undefined && <p role="alert">{String(error)}</p>}
    </form>
  );
}

function StatusLine() {
  const { online, pending, dead, stream } = useLiveStatus(products);
  return (
    <p data-testid="status">
      {online ? 'online' : 'offline'} · {pending ?? '?'} pending · {dead ?? '?'} dead · feed {stream}
    </p>
  );
}
