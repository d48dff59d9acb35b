// The dashboard's only script: the earnings chart (uPlot, served from this service) and the copy buttons.
(() => {
  const data = document.getElementById('earnings-data');
  const target = document.getElementById('earnings-chart');
  if (data && target && window.uPlot) {
    const series = JSON.parse(data.textContent || '[]');
    const first = series[0];
    if (first && first.days.length > 0) {
      const xs = first.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
      const width = Math.max(280, target.clientWidth || 600);
      // Net in the currency's major unit for the axis; the table beside the chart has the exact amounts.
      const scale = ['jpy', 'krw', 'vnd', 'clp'].includes(first.currency) ? 1 : 100;
      const plot = new window.uPlot(
        {
          width,
          height: 240,
          series: [
            {},
            {
              label: `Net (${first.currency.toUpperCase()})`,
              stroke: '#0b57d0',
              width: 2,
              fill: 'rgba(11,87,208,0.08)',
            },
          ],
          axes: [{}, { values: (_u, ticks) => ticks.map((t) => t.toFixed(scale === 1 ? 0 : 2)) }],
        },
        [xs, first.net.map((n) => n / scale)],
        target,
      );
      target.dataset.rendered = 'true';
      window.addEventListener('resize', () =>
        plot.setSize({ width: Math.max(280, target.clientWidth), height: 240 }),
      );
    }
  }
  for (const button of document.querySelectorAll('button.copy')) {
    button.addEventListener('click', async () => {
      const input = document.getElementById(button.dataset.copy || '');
      if (!input) return;
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Select and copy';
      }
    });
  }
})();
