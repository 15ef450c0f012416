// The printable card: the expiry in the local time of the browser that prints it, kept current
// (the staff may extend the session while the card is open), and a print button (no inline
// script: the page's CSP forbids it).

const card = document.getElementById("card");

function show(expires) {
  card.dataset.expires = String(expires);
  const at = new Date(expires * 1000);
  const hhmm = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  for (const element of document.querySelectorAll("time.until")) {
    element.textContent = hhmm;
    element.dateTime = at.toISOString();
  }
}

async function refresh() {
  try {
    const response = await fetch("api/status", { credentials: "same-origin" });
    if (!response.ok) return;
    const status = await response.json();
    const session = status.session;
    document.getElementById("card-ended").hidden = session !== null;
    card.classList.toggle("ended", session === null);
    if (session && session.expires !== Number(card.dataset.expires)) show(session.expires);
  } catch (e) {
    // the box is not answering: the card keeps what it shows; the next poll tries again
  }
}

show(Number(card.dataset.expires));
document.getElementById("print-card").addEventListener("click", () => window.print());
setInterval(refresh, 3000);
