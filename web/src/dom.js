// Small DOM helpers: elements built in code, text set only when it changes,
// and keyed children so that a once-a-second update touches only what moved
// (and never replaces an element the user is dragging or selecting).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'testid') el.dataset.testid = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function setAttr(el, name, value) {
  if (value == null || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else {
    const s = value === true ? '' : String(value);
    if (el.getAttribute(name) !== s) el.setAttribute(name, s);
  }
}

// Makes `parent`'s children one element per item, in order: an element whose
// data-key matches the item's key is kept and updated, others are created by
// create(item) and removed when their item is gone.
export function syncChildren(parent, items, keyOf, create, update) {
  const old = new Map();
  for (const el of parent.children) old.set(el.dataset.key, el);
  const kept = new Set();
  let next = parent.firstElementChild;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = old.get(key);
    if (!el) {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    kept.add(key);
    if (el === next) next = next.nextElementSibling;
    else parent.insertBefore(el, next);
  }
  for (const [key, el] of old) if (!kept.has(key)) el.remove();
}
