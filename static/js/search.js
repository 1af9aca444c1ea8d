// The search page (templates/search.html): ask the site's Pagefind index for ?q= and list the
// pages it finds. Without this script the page shows links to the blog and the topics instead.
const form = document.querySelector("[data-search-form]");
const input = form.querySelector("input[name=q]");
const status = document.querySelector("[data-search-status]");
const list = document.querySelector("[data-search-results]");
const fallback = document.querySelector("[data-search-fallback]");
const SHOWN = 20;

let pagefind;

// A large site's index is in shards (src/headwater/search.py): load the first, merge the rest.
async function load() {
  const response = await fetch("/pagefind/shards.json");
  if (!response.ok) throw new Error(`/pagefind/shards.json: ${response.status}`);
  const [first, ...others] = (await response.json()).bundles;
  if (!first) return null; // nothing indexed yet
  const engine = await import(`${first}pagefind.js`);
  await engine.options({ basePath: first });
  // Merged shards share the first one's engine; each adds only its metadata, fetched at once.
  await Promise.all(others.map((bundle) => engine.mergeIndex(bundle)));
  return engine;
}

async function search(query) {
  list.replaceChildren();
  list.hidden = true;
  if (!query.trim()) {
    status.textContent = "";
    return;
  }
  status.textContent = "Searching…";
  try {
    pagefind ??= await load();
    const found = pagefind ? await pagefind.search(query) : { results: [] };
    const pages = await Promise.all(found.results.slice(0, SHOWN).map((r) => r.data()));
    for (const page of pages) {
      const item = document.createElement("li");
      const heading = document.createElement("h2");
      const link = document.createElement("a");
      link.href = page.url;
      link.textContent = page.meta.title || page.url;
      heading.append(link);
      const excerpt = document.createElement("p");
      excerpt.innerHTML = page.excerpt; // Pagefind's excerpt: escaped page text and <mark>
      item.append(heading, excerpt);
      list.append(item);
    }
    list.hidden = pages.length === 0;
    const total = found.results.length;
    status.textContent =
      total === 0
        ? `No results for “${query}”.`
        : `${total} ${total === 1 ? "result" : "results"} for “${query}”` +
          (total > SHOWN ? `; the first ${SHOWN} are shown.` : ".");
  } catch (error) {
    status.textContent = "Search could not load. Please browse the articles below instead.";
    fallback.hidden = false;
    throw error;
  }
}

fallback.hidden = true;
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = input.value;
  history.replaceState(null, "", query ? `?q=${encodeURIComponent(query)}` : location.pathname);
  search(query);
});
input.value = new URLSearchParams(location.search).get("q") ?? "";
search(input.value);
