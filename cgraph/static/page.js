// cgraph's interactive page: the graph as `cgraph dot` draws it (laid out by Viz.js), a panel per
// input and node with its values and gradients in full, and the passes stepped through with the
// rules and numbers of `cgraph explain --format json`. All data comes from the JSON in the page
// (or, served live, from /update); nothing here recomputes a value or a rule.
"use strict";

(function () {
  const GRAD_COLOR = "#c0392b"; // the colour `cgraph dot` draws gradients in
  const TABLE_ROWS = 2000; // rows of an array table drawn at once; a button draws the rest
  const WIDE = 72; // characters of an equation on one line; longer ones are written on three
  // A graph of more than CROWDED boxes that, all in view, would have fewer than MIN_SCALE screen
  // pixels per unit of the drawing starts zoomed in to START_SCALE at its output.
  const CROWDED = 100;
  const MIN_SCALE = 0.4;
  const START_SCALE = 0.8;
  const MAX_SCALE = 1.5; // a small graph is not magnified more than this to fit
  const config = JSON.parse(document.getElementById("cgraph-config").textContent);
  const $ = (id) => document.getElementById(id);

  let data = JSON.parse(document.getElementById("cgraph-data").textContent);
  let model = null; // what the data says, indexed: see buildModel
  let svg = null; // the drawn graph
  let view = null; // the SVG's viewBox: {x, y, w, h}
  let home = null; // the viewBox that fits the whole graph
  let position = 0; // 0: the whole graph; then the forward steps, then the backward steps
  let selected = null; // the name whose panel is shown
  let hovered = null; // the name under the pointer, shown while it is there
  let vizInstance = null;
  let version = config.version || null;

  // --- numbers, written as `cgraph explain` writes them ------------------------------------

  function num(x) {
    if (typeof x === "string") return { NaN: "nan", Infinity: "inf", "-Infinity": "-inf" }[x] || x;
    if (typeof x === "boolean") return x ? "True" : "False";
    const p = data.precision;
    if (x === 0) return Object.is(x, -0) ? "-0" : "0";
    const a = Math.abs(x);
    if (a >= 1e-4 && a < 1e16) {
      let text = String(x);
      const point = text.indexOf(".");
      if (point >= 0 && text.length - point - 1 > p) {
        text = x.toFixed(p).replace(/0+$/, "").replace(/\.$/, "");
      }
      return text;
    }
    let [mantissa, exponent] = x.toExponential().split("e");
    const point = mantissa.indexOf(".");
    if (point >= 0 && mantissa.length - point - 1 > p) {
      mantissa = x.toExponential(p).split("e")[0].replace(/0+$/, "").replace(/\.$/, ".0");
    }
    if (!mantissa.includes(".")) mantissa += ".0";
    const sign = exponent[0] === "-" ? "-" : "+";
    const digits = exponent.replace(/^[-+]/, "").padStart(2, "0");
    return `${mantissa}e${sign}${digits}`;
  }

  function shapeText(shape) {
    return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  }

  function shapeOf(value) {
    const shape = [];
    while (Array.isArray(value)) {
      shape.push(value.length);
      value = value[0];
    }
    return shape;
  }

  function nested(value) {
    return Array.isArray(value) ? `[${value.map(nested).join(", ")}]` : num(value);
  }

  /** A value on one line: 715, (2,) [9, 12], or (3, 3) array for more than 6 elements. */
  function inline(value) {
    if (!Array.isArray(value)) return num(value);
    const shape = shapeOf(value);
    const size = shape.reduce((a, b) => a * b, 1);
    return size > 6 ? `${shapeText(shape)} array` : `${shapeText(shape)} ${nested(value)}`;
  }

  function flat(value) {
    return Array.isArray(value) ? value.flat(Infinity) : [value];
  }

  function plus(a, b) {
    if (Array.isArray(a)) return a.map((item, i) => plus(item, b[i]));
    const x = typeof a === "string" ? Number(a === "Infinity" ? Infinity : a === "-Infinity" ? -Infinity : NaN) : a;
    const y = typeof b === "string" ? Number(b === "Infinity" ? Infinity : b === "-Infinity" ? -Infinity : NaN) : b;
    return x + y;
  }

  // --- the model: the data indexed by name and step ----------------------------------------

  function buildModel() {
    const entries = data.backward.nodes;
    const names = Object.keys(entries);
    const nodes = names.filter((name) => entries[name].op !== "input");
    const steps = data.explain.steps;
    const nodeStep = {};
    const sumStep = {};
    const uses = {}; // name -> [{user, as, rule, numbers, grad, summed_axes, step}]
    steps.forEach((step, index) => {
      // The page's data has each array once: the value and gradient of a step's own node are its entry's.
      if (step.step === "sum") {
        step.grad = entries[step.name].grad;
      } else {
        step.value = entries[step.name].value;
        step.dout = entries[step.name].grad;
      }
      if (step.step === "sum") {
        sumStep[step.name] = index;
        return;
      }
      nodeStep[step.name] = index;
      const repeated = step.inputs.filter((arg, i) => step.inputs.indexOf(arg) !== i);
      for (const grad of step.grads) {
        (uses[grad.input] = uses[grad.input] || []).push({
          user: step.name, as: repeated.includes(grad.input) ? grad.as : null, grad, step: index,
        });
      }
    });
    // In dependency order, as explain's sums list them: steps are in backward order.
    for (const list of Object.values(uses)) list.sort((a, b) => b.step - a.step);
    // A gradient is complete after the step of its only use, or after its sum.
    const gradDone = {};
    gradDone[data.backward.output] = -1;
    for (const [name, list] of Object.entries(uses)) {
      gradDone[name] = name in sumStep ? sumStep[name] : Math.max(...list.map((use) => use.step));
    }
    return { entries, names, nodes, steps, nodeStep, sumStep, uses, gradDone };
  }

  function positions() {
    return 1 + model.nodes.length + model.steps.length;
  }

  /** What is known at a position: the current name, values computed, gradients sent and complete. */
  function stateAt(p) {
    const forward = model.nodes.length;
    if (p === 0) return { kind: "all" };
    if (p <= forward) {
      const known = new Set(model.names.filter((name) => model.entries[name].op === "input"));
      model.nodes.slice(0, p).forEach((name) => known.add(name));
      return { kind: "forward", index: p - 1, current: model.nodes[p - 1], known };
    }
    const index = p - forward - 1;
    const step = model.steps[index];
    return { kind: "backward", index, step, current: step.name };
  }

  function gradKnown(state, name) {
    if (state.kind === "all") return true;
    if (state.kind === "forward") return false;
    return name in model.gradDone && model.gradDone[name] <= state.index;
  }

  function edgeSent(state, from, to) {
    if (state.kind === "all") return false;
    if (state.kind === "forward") return false;
    return to in model.nodeStep && model.nodeStep[to] <= state.index;
  }

  // --- drawing -------------------------------------------------------------------------------

  async function draw() {
    const canvas = $("canvas");
    if (data.error) {
      if (svg) svg.remove();
      svg = null;
      showMessage(data.error, true);
      $("rule").textContent = "";
      $("panel").textContent = "";
      $("title").textContent = `cgraph: ${data.file}`;
      document.body.dataset.state = "error";
      return;
    }
    model = buildModel();
    $("title").textContent = `cgraph: ${data.file}, output '${data.backward.output}', dout = ${inline(data.backward.dout)}`;
    $("warnings").textContent = (data.warnings || []).join("\n");
    if (!vizInstance) vizInstance = await Viz.instance();
    const started = performance.now();
    const drawn = vizInstance.renderSVGElement(data.dot);
    const previous = svg;
    svg = drawn;
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    const box = svg.viewBox.baseVal;
    const fresh = { x: box.x, y: box.y, w: box.width, h: box.height };
    const keepView = previous && home && view && Math.abs(home.w - fresh.w) < 1 && Math.abs(home.h - fresh.h) < 1;
    home = fresh;
    annotate();
    if (previous) previous.remove();
    showMessage("", false);
    canvas.appendChild(svg);
    if (keepView) setView();
    else fit();
    if (!keepView && model.names.length > CROWDED && unitsPerPixel() > 1 / MIN_SCALE) {
      // Too small to read when it all fits: start at a readable size, at the output.
      const rect = canvas.getBoundingClientRect();
      view.w = rect.width / START_SCALE;
      view.h = rect.height / START_SCALE;
      centre(data.backward.output);
    }
    const slider = $("slider");
    slider.max = String(positions() - 1);
    if (position > positions() - 1) position = positions() - 1;
    if (selected && !(selected in model.entries)) selected = null;
    go(position);
    document.body.dataset.layoutMs = String(Math.round(performance.now() - started));
    document.body.dataset.state = "ready";
  }

  function showMessage(text, error) {
    const message = $("message");
    message.textContent = text;
    message.className = error ? "error" : "";
    message.hidden = !text;
  }

  /** Index the SVG's boxes and edges by name, and mark the value and gradient texts. */
  function annotate() {
    svg.cgraphNodes = {};
    svg.cgraphEdges = [];
    for (const group of svg.querySelectorAll("g.node")) {
      const name = group.querySelector("title").textContent;
      group.dataset.name = name;
      svg.cgraphNodes[name] = group;
      for (const text of group.querySelectorAll("text")) {
        if (text.textContent.startsWith("value ")) text.classList.add("value-text");
        if ((text.getAttribute("fill") || "").toLowerCase() === GRAD_COLOR) text.classList.add("grad-text");
      }
    }
    for (const group of svg.querySelectorAll("g.edge")) {
      const [from, to] = group.querySelector("title").textContent.split("->");
      group.dataset.from = from;
      group.dataset.to = to;
      svg.cgraphEdges.push(group);
      for (const text of group.querySelectorAll("text")) text.classList.add("grad-text");
    }
  }

  /** The whole graph in view, magnified at most MAX_SCALE times. */
  function fit() {
    view = { ...home };
    const rect = $("canvas").getBoundingClientRect();
    const scale = Math.min(rect.width / home.w, rect.height / home.h);
    if (scale > MAX_SCALE) {
      view.w = rect.width / MAX_SCALE;
      view.h = rect.height / MAX_SCALE;
      view.x = home.x + (home.w - view.w) / 2;
      view.y = home.y + (home.h - view.h) / 2;
    }
    setView();
  }

  /** Move the view (keeping its zoom) so that ``name``'s box is in the middle. */
  function centre(name) {
    const group = svg && svg.cgraphNodes[name];
    if (!group) return;
    const box = group.getBoundingClientRect();
    const point = svgPoint(box.left + box.width / 2, box.top + box.height / 2);
    view.x = point.x - view.w / 2;
    view.y = point.y - view.h / 2;
    setView();
  }

  /** Centre ``name``'s box if it is outside the visible part of the picture. */
  function reveal(name) {
    const group = svg && svg.cgraphNodes[name];
    if (!group) return;
    const box = group.getBoundingClientRect();
    const area = $("canvas").getBoundingClientRect();
    if (box.right < area.left || box.left > area.right || box.bottom < area.top || box.top > area.bottom) centre(name);
  }

  function setView() {
    if (svg) svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }

  // --- stepping ----------------------------------------------------------------------------

  function go(p) {
    if (!model) return;
    position = Math.max(0, Math.min(positions() - 1, p));
    $("slider").value = String(position);
    const state = stateAt(position);
    const forward = model.nodes.length;
    $("position").textContent =
      state.kind === "all" ? `the whole graph (${forward} forward, ${model.steps.length} backward steps)`
        : state.kind === "forward" ? `forward ${state.index + 1} of ${forward}: ${state.current}`
          : `backward ${state.index + 1} of ${model.steps.length}: ${state.step.step === "sum" ? "d " : ""}${state.current}`;
    if (svg) {
      restyle(state);
      if (state.current) reveal(state.current);
    }
    showRule(state);
    showPanel();
  }

  function restyle(state) {
    svg.classList.toggle("stepping", state.kind !== "all");
    for (const [name, group] of Object.entries(svg.cgraphNodes)) {
      group.classList.toggle("current", state.current === name);
      group.classList.toggle("selected", selected === name);
      group.classList.toggle("unknown", state.kind === "forward" && !state.known.has(name));
      const hide = !gradKnown(state, name);
      for (const text of group.querySelectorAll(".grad-text")) text.classList.toggle("grad-hidden", hide);
    }
    for (const group of svg.cgraphEdges) {
      const { from, to } = group.dataset;
      const sent = edgeSent(state, from, to);
      group.classList.toggle("sent", sent);
      group.classList.toggle("flowing", state.kind === "forward" && state.known.has(to));
      for (const text of group.querySelectorAll(".grad-text")) text.classList.toggle("grad-hidden", state.kind !== "all" && !sent);
    }
  }

  function line(text, kind) {
    const div = document.createElement("div");
    div.className = `equation ${kind || ""}`;
    div.textContent = text;
    return div;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  /** explain's lines for a node: its value's rule, then each input's gradient's, aligned. */
  function nodeLines(step) {
    const repeated = step.inputs.filter((arg, i) => step.inputs.indexOf(arg) !== i);
    const labels = step.grads.map((grad) => `d ${grad.input}${repeated.includes(grad.input) ? ` (as ${grad.as})` : ""}`);
    const width = Math.max(0, ...labels.map((label) => label.length));
    const rows = [[`${step.name} = ${step.rule}`, "=", step.numbers, step.value, "value"]];
    step.grads.forEach((grad, i) => rows.push([
      `  ${labels[i].padEnd(width)} = ${grad.rule}`, grad.summed_axes.length ? ":" : "=", grad.numbers, grad.grad, "grad"]));
    const left = Math.max(...rows.map((row) => row[0].length));
    const middle = Math.max(...rows.map((row) => row[2].length));
    const results = rows.map((row) => inline(row[3]));
    if (left + middle + Math.max(...results.map((text) => text.length)) <= WIDE) {
      return rows.map(([text, sep, numbers, , kind], i) => line(`${text.padEnd(left)} ${sep} ${numbers.padEnd(middle)} = ${results[i]}`, kind));
    }
    // Too wide for one line each: the rule, then its numbers and result below it.
    return rows.map(([text, sep, numbers, , kind], i) => {
      const indent = " ".repeat(text.search(/\S/) + 4);
      return line(`${text}\n${indent}${sep} ${numbers}\n${indent}= ${results[i]}`, kind);
    });
  }

  function sumLine(step) {
    const parts = step.contributions.map((part) => `${inline(part.grad)} (from ${part.from}${part.as ? `, as ${part.as}` : ""})`);
    return line(`d ${step.name} = ${parts.join(" + ")} = ${inline(step.grad)}`, "grad");
  }

  function showRule(state) {
    const rule = $("rule");
    rule.textContent = "";
    if (state.kind === "all") {
      rule.appendChild(element("div", "Values in green, gradients in red. Step with \u2192 and \u2190 (or the buttons and slider): " +
        "the forward pass node by node, then the backward pass as cgraph explain writes it. Click or hover on a box for its numbers.", "note"));
      return;
    }
    if (state.kind === "forward") {
      const name = state.current;
      const entry = model.entries[name];
      rule.appendChild(element("h3", `forward: ${name}`));
      if (name in model.nodeStep) {
        const step = model.steps[model.nodeStep[name]];
        rule.appendChild(line(`${name} = ${step.rule} = ${step.numbers} = ${inline(step.value)}`, "value"));
      } else {
        rule.appendChild(line(`${name} = ${entry.op}(${entry.inputs.join(", ")}) = ${inline(entry.value)}`, "value"));
        rule.appendChild(element("div", `no path to '${data.backward.output}': its gradient is 0`, "note"));
      }
      return;
    }
    const step = state.step;
    if (step.step === "sum") {
      rule.appendChild(element("h3", `backward: the gradient of ${step.name}, used ${step.contributions.length} times`));
      rule.appendChild(sumLine(step));
      return;
    }
    rule.appendChild(element("h3", `backward: ${step.name}, dout = ${inline(step.dout)}`));
    nodeLines(step).forEach((div) => rule.appendChild(div));
    for (const arg of new Set(step.inputs)) {
      const list = model.uses[arg] || [];
      if (list.length < 2) continue;
      const sent = list.filter((use) => use.step <= state.index);
      const sum = sent.map((use) => use.grad.grad).reduce(plus);
      rule.appendChild(element("div",
        `d ${arg} so far: ${inline(sum)} (${sent.length} of its ${list.length} uses sent back)`, "note"));
    }
  }

  // --- the panel ---------------------------------------------------------------------------

  function showPanel() {
    const panel = $("panel");
    panel.textContent = "";
    const name = hovered || selected;
    if (!model || !name || !(name in model.entries)) return;
    const entry = model.entries[name];
    const state = stateAt(position);
    panel.dataset.name = name;
    panel.appendChild(element("h2", name));
    if (entry.op === "input") {
      panel.appendChild(element("div", `input, shape ${shapeText(entry.shape)}, ${entry.dtype}`, "layer"));
    } else {
      panel.appendChild(element("div", `${name} = ${entry.op}(${entry.inputs.join(", ")})`, "layer"));
      panel.appendChild(element("div", data.layers[name] + (entry.dtype === "float64" ? "" : `, ${entry.dtype}`), "layer"));
    }
    panel.appendChild(arraySection("value", entry.value, "value-part"));
    panel.appendChild(arraySection("gradient", entry.grad, "grad-part"));
    if (state.kind !== "all" && !gradKnown(state, name)) {
      panel.appendChild(element("div", "(at this step the backward pass has not finished this gradient)", "note pending"));
    }
    if (entry.op !== "input") senders(panel, name, entry, state);
    receivers(panel, name, state);
    checked(panel, name);
  }

  /** What the node's backward sent to each of its inputs, with the rule and any broadcast sum. */
  function senders(panel, name, entry, state) {
    panel.appendChild(element("h3", "sent back to each input"));
    if (!(name in model.nodeStep)) {
      panel.appendChild(element("div", `no path to '${data.backward.output}': the gradient of each input from here is 0`, "note"));
      return;
    }
    const step = model.steps[model.nodeStep[name]];
    const repeated = step.inputs.filter((arg, i) => step.inputs.indexOf(arg) !== i);
    for (const grad of step.grads) {
      const div = element("div", undefined, "grad-part");
      div.appendChild(line(`d ${grad.input}${repeated.includes(grad.input) ? ` (as ${grad.as})` : ""} = ${grad.rule}` +
        `${grad.summed_axes.length ? " : " : " = "}${grad.numbers}`, "grad"));
      if (grad.summed_axes.length) {
        div.appendChild(element("div", `broadcast: summed over axes ${shapeText(grad.summed_axes)}, ` +
          `${shapeText(step.shape)} -> ${shapeText(grad.shape)}`, "note summed"));
      }
      div.appendChild(arrayView(grad.grad));
      panel.appendChild(div);
    }
  }

  /** The gradient each use sent back to this value and, where there are several, their sum. */
  function receivers(panel, name, state) {
    const list = model.uses[name] || [];
    if (!list.length) return;
    panel.appendChild(element("h3", list.length > 1 ? `the gradient from each of its ${list.length} uses` : "the gradient from its use"));
    for (const use of list) {
      const done = state.kind === "all" || (state.kind === "backward" && use.step <= state.index);
      const div = element("div", undefined, "grad-part");
      div.appendChild(line(`from ${use.user}${use.as ? ` (as ${use.as})` : ""}: ${use.grad.rule} = ${inline(use.grad.grad)}` +
        (done ? "" : "  (not sent back yet)"), done ? "grad" : "pending"));
      if (use.grad.summed_axes.length) {
        div.appendChild(element("div", `broadcast: summed over axes ${shapeText(use.grad.summed_axes)}: ${use.grad.numbers}`, "note summed"));
      }
      if (list.length > 1 || Array.isArray(use.grad.grad)) div.appendChild(arrayView(use.grad.grad));
      panel.appendChild(div);
    }
    if (name in model.sumStep) {
      const sum = model.steps[model.sumStep[name]];
      panel.appendChild(sumLine(sum));
      if (state.kind === "backward" && state.index < model.sumStep[name]) {
        const sent = list.filter((use) => use.step <= state.index);
        const text = sent.length ? inline(sent.map((use) => use.grad.grad).reduce(plus)) : "nothing yet";
        panel.appendChild(element("div", `so far: ${text} (${sent.length} of ${list.length} uses)`, "note"));
      }
    }
  }

  function checked(panel, name) {
    if (!data.check) return;
    const item = data.check.inputs.find((input) => input.name === name);
    if (!item) return;
    panel.appendChild(element("h3", "gradient check (central differences)"));
    const result = element("div", undefined, "check");
    result.appendChild(element("span", item.passed ? "PASS" : "FAIL", item.passed ? "pass" : "fail"));
    const checkedText = item.checked === item.elements ? `${item.checked}` : `${item.checked} of ${item.elements}`;
    result.appendChild(document.createTextNode(
      ` elements checked: ${checkedText}; max abs error ${Number(item.max_abs_error).toExponential(2)}, ` +
      `max rel error ${Number(item.max_rel_error).toExponential(2)} ` +
      `(rtol ${data.check.rtol}, atol ${data.check.atol}, eps ${data.check.eps})`));
    panel.appendChild(result);
  }

  function arraySection(title, value, className) {
    const section = element("div", undefined, `${className} section`);
    section.appendChild(element("h3", Array.isArray(value) ? `${title} ${shapeText(shapeOf(value))}` : title));
    section.appendChild(arrayView(value));
    return section;
  }

  /** A value in full: a number, or a scrollable table (and a heatmap for a matrix). */
  function arrayView(value) {
    const wrap = element("div", undefined, "array-view");
    if (!Array.isArray(value)) {
      wrap.appendChild(line(num(value)));
      wrap.dataset.values = JSON.stringify([value]);
      return wrap;
    }
    const shape = shapeOf(value);
    const columns = shape.length ? shape[shape.length - 1] : 1;
    const cells = flat(value);
    wrap.dataset.values = JSON.stringify(cells);
    if (shape.length === 2 && cells.length > 1) wrap.appendChild(heatmap(cells, shape[0], shape[1]));
    const scroller = element("div", undefined, "array");
    const table = document.createElement("table");
    const rows = columns ? cells.length / columns : 0;
    const lead = shape.slice(0, -1);
    const addRows = (from, to) => {
      for (let r = from; r < to; r++) {
        const tr = document.createElement("tr");
        if (lead.length) tr.appendChild(element("th", rowLabel(r, lead)));
        for (let c = 0; c < columns; c++) {
          const x = cells[r * columns + c];
          const td = element("td", num(x));
          td.title = typeof x === "number" ? String(x) : x;
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
    };
    addRows(0, Math.min(rows, TABLE_ROWS));
    scroller.appendChild(table);
    wrap.appendChild(scroller);
    if (rows > TABLE_ROWS) {
      const more = element("button", `show all ${rows} rows`);
      more.type = "button";
      more.addEventListener("click", () => { addRows(TABLE_ROWS, rows); more.remove(); });
      wrap.appendChild(more);
    }
    return wrap;
  }

  function rowLabel(row, lead) {
    const index = [];
    for (let i = lead.length - 1; i >= 0; i--) {
      index.unshift(row % lead[i]);
      row = Math.floor(row / lead[i]);
    }
    return lead.length === 1 ? String(index[0]) : `[${index.join(", ")}, :]`;
  }

  function colour(x, limit) {
    // white at 0, red for positive, blue for negative; grey for NaN and infinities
    if (typeof x !== "number") return [150, 150, 150];
    const t = limit ? Math.min(1, Math.abs(x) / limit) : 0;
    return x >= 0 ? [255, Math.round(255 - 190 * t), Math.round(255 - 200 * t)]
      : [Math.round(255 - 200 * t), Math.round(255 - 140 * t), 255];
  }

  function heatmap(cells, rows, columns) {
    const wrap = element("div", undefined, "heatmap");
    const limit = Math.max(0, ...cells.filter((x) => typeof x === "number").map(Math.abs));
    const canvas = document.createElement("canvas");
    canvas.width = columns;
    canvas.height = rows;
    const scale = Math.max(1, Math.min(16, Math.floor(320 / Math.max(rows, columns))));
    canvas.style.width = `${columns * scale}px`;
    canvas.style.height = `${rows * scale}px`;
    const context = canvas.getContext("2d");
    const image = context.createImageData(columns, rows);
    cells.forEach((x, i) => {
      const [r, g, b] = colour(x, limit);
      image.data.set([r, g, b, 255], i * 4);
    });
    context.putImageData(image, 0, 0);
    wrap.appendChild(canvas);
    const legend = element("div", undefined, "scale");
    const bar = document.createElement("canvas");
    bar.width = 120;
    bar.height = 1;
    const barContext = bar.getContext("2d");
    const barImage = barContext.createImageData(120, 1);
    for (let i = 0; i < 120; i++) {
      const [r, g, b] = colour(limit * (i / 59.5 - 1), limit);
      barImage.data.set([r, g, b, 255], i * 4);
    }
    barContext.putImageData(barImage, 0, 0);
    legend.appendChild(bar);
    legend.appendChild(element("span", `${num(-limit)} \u2026 0 \u2026 ${num(limit)}`));
    wrap.appendChild(legend);
    return wrap;
  }

  // --- pan, zoom, selection and keys ------------------------------------------------------

  function nameAt(target) {
    const group = target.closest && target.closest("g.node");
    return group ? group.dataset.name : null;
  }

  function setUpEvents() {
    const canvas = $("canvas");
    let drag = null;
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (drag && view) {
        const dx = event.clientX - drag.x;
        const dy = event.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) {
          canvas.classList.add("dragging");
          const scale = unitsPerPixel();
          view.x = drag.view.x - dx * scale;
          view.y = drag.view.y - dy * scale;
          setView();
        }
        return;
      }
      const name = nameAt(document.elementFromPoint(event.clientX, event.clientY) || event.target);
      if (name !== hovered) {
        hovered = name;
        showPanel();
      }
    });
    canvas.addEventListener("pointerup", (event) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      canvas.classList.remove("dragging");
      if (wasDrag) return;
      const name = nameAt(document.elementFromPoint(event.clientX, event.clientY) || event.target);
      select(name);
    });
    canvas.addEventListener("pointerleave", () => {
      if (hovered) {
        hovered = null;
        showPanel();
      }
    });
    canvas.addEventListener("wheel", (event) => {
      if (!svg || !view) return;
      event.preventDefault();
      const factor = Math.exp(Math.max(-1, Math.min(1, event.deltaY / 300)));
      const point = svgPoint(event.clientX, event.clientY);
      view.x = point.x - (point.x - view.x) * factor;
      view.y = point.y - (point.y - view.y) * factor;
      view.w *= factor;
      view.h *= factor;
      setView();
    }, { passive: false });
    $("fit").addEventListener("click", () => { if (home) fit(); });
    $("first").addEventListener("click", () => go(0));
    $("prev").addEventListener("click", () => go(position - 1));
    $("next").addEventListener("click", () => go(position + 1));
    $("last").addEventListener("click", () => go(positions() - 1));
    $("slider").addEventListener("input", (event) => go(Number(event.target.value)));
    document.addEventListener("keydown", (event) => {
      if (event.target === $("slider") || event.altKey || event.ctrlKey || event.metaKey) return;
      const moves = { ArrowRight: position + 1, ArrowLeft: position - 1, Home: 0, End: model ? positions() - 1 : 0 };
      if (event.key in moves) {
        event.preventDefault();
        go(moves[event.key]);
      } else if (event.key === "Escape") {
        select(null);
      }
    });
  }

  function select(name) {
    selected = name;
    hovered = null;
    go(position);
  }

  function unitsPerPixel() {
    const rect = $("canvas").getBoundingClientRect();
    return Math.max(view.w / Math.max(1, rect.width), view.h / Math.max(1, rect.height));
  }

  function svgPoint(clientX, clientY) {
    const point = svg.createSVGPoint();
    point.x = clientX;
    point.y = clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  // --- served live: new data when the file changes -----------------------------------------

  async function poll() {
    try {
      const response = await fetch(`/update?have=${encodeURIComponent(version || "")}`, { cache: "no-store" });
      if (response.ok) {
        const update = await response.json();
        if (update.version !== version) {
          version = update.version;
          data = update.data;
          await draw();
        }
      }
    } catch (error) {
      // the server stopped or the file is being written: try again shortly
    }
    setTimeout(poll, 300);
  }

  setUpEvents();
  draw().catch((error) => {
    showMessage(`cannot lay out the graph: ${error.message || error}`, true);
    document.body.dataset.state = "error";
  }).finally(() => {
    if (config.live) setTimeout(poll, 300);
  });
})();
