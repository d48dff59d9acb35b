/**
 * The demo shop's trusted price list: the storefront sends Stripe these prices, whatever the browser posts
 * (it posts a product id and a quantity only). Amounts in cents.
 */
export const PRODUCTS = [
  { id: 'tshirt', name: 'T-shirt', unit_amount: 2500, blurb: 'Organic cotton, printed logo.' },
  { id: 'mug', name: 'Mug', unit_amount: 1200, blurb: 'Stoneware, 330 ml.' },
  { id: 'poster', name: 'Poster', unit_amount: 4000, blurb: 'A2, matte paper.' },
  { id: 'hoodie', name: 'Hoodie', unit_amount: 6500, blurb: 'Heavy fleece, zip.' },
] as const;

export const CURRENCY = 'usd';

export type ProductId = (typeof PRODUCTS)[number]['id'];

export const productById = (id: string) => PRODUCTS.find((p) => p.id === id);
