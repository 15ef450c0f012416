// The printable card: the expiry in the local time of the browser that prints it, and a print
// button (no inline script: the page's CSP forbids it).

const card = document.getElementById("card");
const expires = new Date(Number(card.dataset.expires) * 1000);
const hhmm = expires.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
for (const element of document.querySelectorAll("time.until")) element.textContent = hhmm;
document.getElementById("print-card").addEventListener("click", () => window.print());
