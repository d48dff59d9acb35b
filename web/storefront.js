// The thanks page: asks the service for the order's status until the webhook has settled it. It only reads.
(() => {
  const el = document.getElementById('order-status');
  if (!el) return;
  const labels = {
    awaiting_payment: 'waiting for the payment to be confirmed…',
    processing: 'payment processing…',
    paid: 'paid',
    payment_failed: 'payment failed',
    expired: 'expired',
  };
  let tries = 0;
  const poll = async () => {
    tries += 1;
    try {
      const res = await fetch(`/shop/orders/${encodeURIComponent(el.dataset.order || '')}/status`, {
        cache: 'no-store',
      });
      if (res.ok) {
        const { status } = await res.json();
        el.dataset.status = status;
        el.textContent = labels[status] || status;
        if (status !== 'awaiting_payment' && status !== 'processing') return;
      }
    } catch {
      // A dropped request is tried again below.
    }
    if (tries < 120) setTimeout(poll, 1000);
  };
  poll();
})();
