// cgraph's interactive page: a box per input and node (its name, op, shape, and its value and
// gradient as numbers or heatmaps), laid out by Viz.js (Graphviz in WebAssembly) or, for big
// graphs, by a quick layered layout here; a panel per input and node with its values and gradients;
// and the passes stepped through with the rules and numbers of `cgraph explain --format json`.
// All data comes from the JSON in the page (or, served live, from /update); nothing here
// recomputes a value or a rule.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const FONT_FAMILY = 'Helvetica, Arial, "Liberation Sans", "Nimbus Sans", sans-serif';
  const NAME_FONT = 13; // a box's name, bold; its other lines are TEXT_FONT or SMALL_FONT
  const TEXT_FONT = 12;
  const SMALL_FONT = 11; // the smallest text drawn: at zoom 1 it is 11 CSS pixels
  const LINE = 1.3; // line height, in font sizes
  const PAD = 8; // space inside a box around its contents
  const HEAT_WIDTH = 150; // the most room a heatmap takes in a box, in drawing units
  const HEAT_HEIGHT = 72;
  const HEAT_CELL = 8; // the largest cell of a heatmap in a box
  const INLINE_ELEMENTS = 4; // arrays of at most this many elements show their numbers in the box too
  const MIN_ZOOM = 1; // the page opens no smaller than this (so text is at least SMALL_FONT pixels)
  const MAX_ZOOM = 1.5; // a small graph is not magnified more than this to fit
  const GRAPHVIZ_LIMIT = 150; // boxes laid out by Graphviz; more, by the layered layout here
  const TABLE_ROWS = 2000; // rows of an array table drawn at once; a button draws the rest
  const MARGIN = 12; // room around the drawing, in drawing units
  const WIDE = 72; // characters of an equation on one line; longer ones are written on three
  const config = JSON.parse(document.getElementById("cgraph-config").textContent);
  const $ = (id) => document.getElementById(id);

  let data = JSON.parse(document.getElementById("cgraph-data").textContent);
  let model = null; // what the data says, indexed: see buildModel
  let svg = null; // the drawn graph
  let drawing = null; // the layout: {boxes: {name: {x, y, w, h}}, width, height, direction}
  let view = null; // the SVG's viewBox: {x, y, w, h}
  let home = null; // the viewBox of the whole drawing
  let position = 0; // 0: the whole graph; then the forward steps, then the backward steps
  let selected = null; // the name whose panel is shown
  let hovered = null; // the name under the pointer, shown while it is there
  let vizInstance = null;
  let version = config.version || null;
  let painting = false; // a repaint of the heatmaps in view and of the mini-map is due
  const decoded = new WeakMap();
  const loaded = new Map(); // served live: the whole arrays fetched for sampled ones, by "name\nvalue|grad"
  const measurer = document.createElement("canvas").getContext("2d");

  // --- arrays: decoded from the page's base64 ----------------------------------------------

  /** A value of the data as a number (or "NaN"-like string) or an array {shape, values, size, step?, min?, max?}. */
  function decode(value) {
    if (value === null || typeof value !== "object") return value;
    if (decoded.has(value)) return decoded.get(value);
    const text = atob(value.data);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const values = value.bytes === 4 ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
    const size = value.shape.reduce((a, b) => a * b, 1);
    const array = { shape: value.shape, dtype: value.dtype, values, size };
    if (value.step) {
      array.step = value.step;
      array.min = value.min;
      array.max = value.max;
      array.sampleShape = value.shape.map((n, k) => Math.ceil(n / value.step[k]));
    } else {
      array.sampleShape = value.shape;
    }
    decoded.set(value, array);
    return array;
  }

  const isArray = (x) => x !== null && typeof x === "object";

  // --- numbers, written as `cgraph explain` writes them ------------------------------------

  function num(x) {
    if (typeof x === "string") return { NaN: "nan", Infinity: "inf", "-Infinity": "-inf" }[x] || x;
    if (typeof x === "boolean") return x ? "True" : "False";
    if (Number.isNaN(x)) return "nan";
    if (x === Infinity) return "inf";
    if (x === -Infinity) return "-inf";
    const p = data.precision;
    if (x === 0) return Object.is(x, -0) ? "-0" : "0";
    const a = Math.abs(x);
    if (a >= Math.max(1e-4, 10 ** -p) && a < 1e16) {
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

  /** A number in full (the shortest text that reads back the same), for hover and tooltips. */
  function exact(x) {
    return typeof x === "number" ? String(x).replace("Infinity", "inf").replace("NaN", "nan") : num(x);
  }

  function shapeText(shape) {
    return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  }

  /** The numbers of an array, nested as its shape: [[1, 2], [3, 4]]. */
  function nested(array) {
    const { shape, values } = array;
    const write = (axis, offset) => {
      if (axis === shape.length) return num(values[offset]);
      const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const parts = [];
      for (let i = 0; i < shape[axis]; i++) parts.push(write(axis + 1, offset + i * stride));
      return `[${parts.join(", ")}]`;
    };
    return write(0, 0);
  }

  /** A value on one line: 715, (2,) [9, 12], or (3, 3) array for more than 6 elements. */
  function inline(value) {
    const array = decode(value);
    if (!isArray(array)) return num(array);
    return array.size > 6 || array.step ? `${shapeText(array.shape)} array` : `${shapeText(array.shape)} ${nested(array)}`;
  }

  function asNumber(x) {
    return typeof x === "string" ? Number(x === "Infinity" ? Infinity : x === "-Infinity" ? -Infinity : NaN) : x;
  }

  function plus(a, b) {
    a = decode(a);
    b = decode(b);
    if (!isArray(a)) return asNumber(a) + asNumber(b);
    const values = new Float64Array(a.values.length);
    for (let i = 0; i < values.length; i++) values[i] = a.values[i] + b.values[i];
    return { ...a, values };
  }

  // --- the model: the data indexed by name and step ----------------------------------------

  function buildModel() {
    const entries = data.backward.nodes;
    const names = Object.keys(entries);
    const nodes = names.filter((name) => entries[name].op !== "input");
    const steps = data.explain.steps;
    const nodeStep = {};
    const sumStep = {};
    const uses = {}; // name -> [{user, as, grad, step}]
    steps.forEach((step, index) => {
      // The page's data has each array once: the value and gradient of a step's own node are its entry's.
      if (step.step === "sum") {
        step.grad = entries[step.name].grad;
        sumStep[step.name] = index;
        return;
      }
      step.value = entries[step.name].value;
      step.dout = entries[step.name].grad;
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
    // The gradient each drawn edge carried back: from the step of the node using the value.
    const edges = [];
    for (const name of nodes) {
      const step = name in nodeStep ? steps[nodeStep[name]] : null;
      entries[name].inputs.forEach((arg, index) => {
        if (!(arg in entries)) return; // a constant, or a name not drawn
        const grad = step ? step.grads.find((item, k) => item.input === arg &&
          step.grads.slice(0, k).filter((other) => other.input === arg).length ===
          entries[name].inputs.slice(0, index).filter((other) => other === arg).length) : null;
        edges.push({ from: arg, to: name, grad: grad ? grad.grad : null });
      });
    }
    const forwardIndex = {};
    nodes.forEach((name, index) => { forwardIndex[name] = index; });
    return { entries, names, nodes, steps, nodeStep, sumStep, uses, gradDone, edges, forwardIndex };
  }

  function positions() {
    return 1 + model.nodes.length + model.steps.length;
  }

  /** What is known at a position: the current name, values computed, gradients sent and complete. */
  function stateAt(p) {
    const forward = model.nodes.length;
    if (p === 0) return { kind: "all" };
    if (p <= forward) return { kind: "forward", index: p - 1, current: model.nodes[p - 1] };
    const index = p - forward - 1;
    const step = model.steps[index];
    return { kind: "backward", index, step, current: step.name };
  }

  function valueKnown(state, name) {
    return state.kind !== "forward" || model.entries[name].op === "input" || model.forwardIndex[name] <= state.index;
  }

  function gradKnown(state, name) {
    if (state.kind === "all") return true;
    if (state.kind === "forward") return false;
    return name in model.gradDone && model.gradDone[name] <= state.index;
  }

  function edgeSent(state, to) {
    return state.kind === "backward" && to in model.nodeStep && model.nodeStep[to] <= state.index;
  }

  // --- boxes: their lines and heatmaps, measured ---------------------------------------------

  function textWidth(text, size, bold) {
    const font = `${bold ? "bold " : ""}${size}px ${FONT_FAMILY}`;
    if (measurer.cgraphFont !== font) {
      measurer.font = font;
      measurer.cgraphFont = font;
    }
    return measurer.measureText(text).width;
  }

  /** Rows and columns of an array's heatmap, and the element at each cell: a vector on rows of
   *  at most 16, a matrix as it is, a 3-d array as matrices side by side, a 4-d one as a grid of them. */
  function grid(array) {
    const shape = array.sampleShape;
    const n = shape.length;
    if (n === 1) {
      const cols = Math.min(shape[0], 16);
      const rows = Math.ceil(shape[0] / Math.max(1, cols));
      return { rows, cols, at: (r, c) => (r * cols + c < shape[0] ? r * cols + c : -1) };
    }
    if (n === 2) return { rows: shape[0], cols: shape[1], at: (r, c) => r * shape[1] + c };
    const h = shape[n - 2];
    const w = shape[n - 1];
    const across = shape[n - 3];
    const down = shape.slice(0, n - 3).reduce((a, b) => a * b, 1);
    const rows = down * (h + 1) - 1;
    const cols = across * (w + 1) - 1;
    return {
      rows, cols,
      at: (r, c) => {
        const tileRow = Math.floor(r / (h + 1));
        const tileCol = Math.floor(c / (w + 1));
        const i = r % (h + 1);
        const j = c % (w + 1);
        if (i === h || j === w) return -1; // the gap between tiles
        return ((tileRow * across + tileCol) * h + i) * w + j;
      },
    };
  }

  function limitOf(array) {
    if (array.step) return Math.max(Math.abs(array.min || 0), Math.abs(array.max || 0));
    let limit = 0;
    for (const x of array.values) if (Number.isFinite(x) && Math.abs(x) > limit) limit = Math.abs(x);
    return limit;
  }

  function colour(x, limit) {
    // white at 0, red for positive, blue for negative; grey for NaN and infinities
    if (!Number.isFinite(x)) return [150, 150, 150];
    const t = limit ? Math.min(1, Math.abs(x) / limit) : 0;
    return x >= 0 ? [255, Math.round(255 - 190 * t), Math.round(255 - 200 * t)]
      : [Math.round(255 - 200 * t), Math.round(255 - 140 * t), 255];
  }

  /** A canvas with one pixel per cell of the array's heatmap. */
  function heatCanvas(array) {
    const { rows, cols, at } = grid(array);
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, cols);
    canvas.height = Math.max(1, rows);
    const context = canvas.getContext("2d");
    const image = context.createImageData(canvas.width, canvas.height);
    const limit = limitOf(array);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const index = at(r, c);
        const [red, green, blue] = index < 0 ? [221, 221, 221] : colour(array.values[index], limit);
        image.data.set([red, green, blue, 255], (r * cols + c) * 4);
      }
    }
    context.putImageData(image, 0, 0);
    return canvas;
  }

  /** The heatmap's size in a box, in drawing units: square cells of at most HEAT_CELL where it
   *  fits in HEAT_WIDTH x HEAT_HEIGHT; a long thin array's cells are stretched to stay visible. */
  function heatSize(array) {
    const { rows, cols } = grid(array);
    const cell = Math.min(HEAT_CELL, HEAT_WIDTH / Math.max(1, cols), HEAT_HEIGHT / Math.max(1, rows));
    return {
      w: Math.min(HEAT_WIDTH, Math.max(cols * cell, Math.min(cols * HEAT_CELL, 24))),
      h: Math.min(HEAT_HEIGHT, Math.max(rows * cell, Math.min(rows * HEAT_CELL, 16))),
    };
  }

  /** The element of ``array`` (its index along each axis, in the whole array) at cell (r, c), or null. */
  function elementAt(array, r, c) {
    const { rows, cols, at } = grid(array);
    if (r < 0 || c < 0 || r >= rows || c >= cols) return null;
    const flatIndex = at(r, c);
    if (flatIndex < 0) return null;
    const index = [];
    let rest = flatIndex;
    for (let k = array.sampleShape.length - 1; k >= 0; k--) {
      index.unshift((rest % array.sampleShape[k]) * (array.step ? array.step[k] : 1));
      rest = Math.floor(rest / array.sampleShape[k]);
    }
    return { index, value: array.values[flatIndex] };
  }

  /** A box's contents: lines of text and the heatmaps below them, with its size. */
  function boxContents(name) {
    const entry = model.entries[name];
    const lines = [
      { text: name, size: NAME_FONT, bold: true, cls: "name" },
      { text: `${entry.label}, shape ${shapeText(entry.shape)}`, size: SMALL_FONT, cls: "op" },
    ];
    const value = decode(entry.value);
    const grad = decode(entry.grad);
    const heats = [];
    if (!isArray(value)) {
      lines.push({ text: `value ${num(value)}`, size: TEXT_FONT, cls: "value-text" });
      lines.push({ text: `grad ${num(grad)}`, size: TEXT_FONT, cls: "grad-text" });
    } else {
      if (value.size <= INLINE_ELEMENTS) {
        lines.push({ text: `value ${nested(value)}`, size: TEXT_FONT, cls: "value-text" });
        lines.push({ text: `grad ${nested(grad)}`, size: TEXT_FONT, cls: "grad-text" });
      }
      if (value.size > 0) {
        for (const [part, array] of [["value", value], ["grad", grad]]) {
          const { w, h } = heatSize(array);
          const caption = array.step ? `${part} (sampled)` : part;
          heats.push({ part, array, caption, w, h,
            captionWidth: textWidth(caption, SMALL_FONT, false) });
        }
      }
    }
    let width = 0;
    let height = PAD;
    for (const item of lines) {
      item.width = textWidth(item.text, item.size, item.bold);
      width = Math.max(width, item.width);
      item.y = height + item.size; // the baseline
      height += item.size * LINE;
    }
    if (heats.length) {
      height += 4;
      let x = 0;
      const top = height;
      let tallest = 0;
      for (const heat of heats) {
        heat.x = x;
        heat.y = top + SMALL_FONT * LINE;
        x += Math.max(heat.w, heat.captionWidth) + 12;
        tallest = Math.max(tallest, heat.h);
      }
      width = Math.max(width, x - 12);
      height = top + SMALL_FONT * LINE + tallest;
    }
    return { lines, heats, w: Math.ceil(width + 2 * PAD), h: Math.ceil(height + PAD) };
  }

  // --- layout ------------------------------------------------------------------------------

  /** Graphviz's layout of the boxes (sizes fixed to their contents) in ``direction``. */
  function graphvizLayout(contents, direction) {
    const ids = {};
    model.names.forEach((name, i) => { ids[name] = `n${i}`; });
    const lines = [`digraph cgraph {`, `  rankdir=${direction}; nodesep=0.2; ranksep=0.3;`,
      `  node [shape=box, fixedsize=true, label=""];`,
      `  edge [fontname="Helvetica", fontsize=${SMALL_FONT}, arrowsize=0.8];`];
    for (const name of model.names) {
      const box = contents[name];
      lines.push(`  ${ids[name]} [width=${(box.w / 72).toFixed(4)}, height=${(box.h / 72).toFixed(4)}];`);
    }
    for (const edge of model.edges) {
      const label = edgeLabel(edge);
      lines.push(`  ${ids[edge.from]} -> ${ids[edge.to]}${label ? ` [label="${label.replace(/["\\]/g, "")}"]` : ""};`);
    }
    lines.push("}");
    const result = vizInstance.renderJSON(lines.join("\n"));
    const [, , width, height] = result.bb.split(",").map(Number);
    const byId = {};
    const boxes = {};
    for (const object of result.objects || []) {
      if (!object.pos) continue;
      const name = model.names[Number(object.name.slice(1))];
      const [x, y] = object.pos.split(",").map(Number);
      const box = contents[name];
      boxes[name] = { x: x - box.w / 2, y: height - y - box.h / 2, w: box.w, h: box.h };
      byId[object._gvid] = name;
    }
    const paths = (result.edges || []).map((edge, k) => {
      const spline = parseSpline(edge.pos, height);
      const label = edge.lp ? edge.lp.split(",").map(Number) : null;
      return { ...spline, label: label ? [label[0], height - label[1]] : null, edge: model.edges[k] };
    });
    return { boxes, paths, width, height, direction };
  }

  /** Graphviz's "e,x,y x0,y0 x1,y1 ..." as an SVG path and the arrowhead's end. */
  function parseSpline(pos, height) {
    let end = null;
    const points = [];
    for (const part of pos.split(" ")) {
      const fields = part.split(",");
      if (fields[0] === "e") end = [Number(fields[1]), height - Number(fields[2])];
      else if (fields[0] !== "s") points.push([Number(fields[0]), height - Number(fields[1])]);
    }
    let d = `M${points[0][0]},${points[0][1]}`;
    for (let i = 1; i + 2 < points.length + 1; i += 3) {
      d += `C${points[i].join(",")} ${points[i + 1].join(",")} ${points[i + 2].join(",")}`;
    }
    return { d, last: points[points.length - 1], end };
  }

  /** A layered layout, for graphs too big for Graphviz to lay out quickly: ranks by longest path
   *  (inputs just above their first use), order by barycentres, positions pulled to neighbours. */
  function layeredLayout(contents, direction) {
    const down = direction === "TB";
    const along = (box) => (down ? box.h : box.w); // size in the direction of the edges
    const across = (box) => (down ? box.w : box.h);
    const names = model.names;
    const rank = {};
    const users = {};
    for (const edge of model.edges) (users[edge.from] = users[edge.from] || []).push(edge.to);
    for (const name of names) {
      const entry = model.entries[name];
      if (entry.op === "input") continue;
      let r = 0;
      for (const arg of entry.inputs) if (arg in rank) r = Math.max(r, rank[arg] + 1);
      rank[name] = r;
      // inputs come before the nodes in the data: give them a rank when first needed
      for (const arg of entry.inputs) if (!(arg in rank) && arg in model.entries) rank[arg] = -1;
    }
    for (const name of names) {
      if (model.entries[name].op !== "input") continue;
      const uses = (users[name] || []).map((user) => rank[user]);
      rank[name] = uses.length ? Math.max(0, Math.min(...uses) - 1) : 0;
    }
    // vertices: the boxes, and a dummy at each rank a long edge crosses
    const vertices = names.map((name) => ({ name, rank: rank[name], size: across(contents[name]), up: [], downs: [] }));
    const index = {};
    names.forEach((name, i) => { index[name] = i; });
    const routes = model.edges.map((edge) => {
      let from = index[edge.from];
      const chain = [from];
      for (let r = rank[edge.from] + 1; r < rank[edge.to]; r++) {
        const dummy = vertices.length;
        vertices.push({ name: null, rank: r, size: 8, up: [], downs: [] });
        vertices[from].downs.push(dummy);
        vertices[dummy].up.push(from);
        from = dummy;
        chain.push(dummy);
      }
      vertices[from].downs.push(index[edge.to]);
      vertices[index[edge.to]].up.push(from);
      chain.push(index[edge.to]);
      return chain;
    });
    const ranks = [];
    vertices.forEach((vertex, i) => { (ranks[vertex.rank] = ranks[vertex.rank] || []).push(i); });
    for (let r = 0; r < ranks.length; r++) ranks[r] = ranks[r] || [];
    const order = new Float64Array(vertices.length);
    const place = () => ranks.forEach((list) => list.forEach((v, i) => { order[v] = i; }));
    place();
    const mean = (list, of) => list.reduce((sum, v) => sum + of[v], 0) / list.length;
    for (let sweep = 0; sweep < 4; sweep++) {
      const downward = sweep % 2 === 0;
      const sequence = downward ? ranks.slice(1) : ranks.slice(0, -1).reverse();
      for (const list of sequence) {
        const key = new Map(list.map((v) => {
          const near = downward ? vertices[v].up : vertices[v].downs;
          return [v, near.length ? mean(near, order) : order[v]];
        }));
        list.sort((a, b) => key.get(a) - key.get(b));
        list.forEach((v, i) => { order[v] = i; });
      }
    }
    // positions across: packed, then pulled towards their neighbours, keeping order and gaps
    const GAP = 16;
    const x = new Float64Array(vertices.length);
    const pack = (list, wanted) => {
      const left = list.map(() => 0);
      const right = list.map(() => 0);
      list.forEach((v, i) => {
        left[i] = i ? Math.max(wanted[i], left[i - 1] + (vertices[list[i - 1]].size + vertices[v].size) / 2 + GAP) : wanted[i];
      });
      for (let i = list.length - 1; i >= 0; i--) {
        const v = list[i];
        right[i] = i < list.length - 1
          ? Math.min(wanted[i], right[i + 1] - (vertices[list[i + 1]].size + vertices[v].size) / 2 - GAP) : wanted[i];
      }
      list.forEach((v, i) => { x[v] = (left[i] + right[i]) / 2; });
      list.forEach((v, i) => {
        if (i) x[v] = Math.max(x[v], x[list[i - 1]] + (vertices[list[i - 1]].size + vertices[v].size) / 2 + GAP);
      });
    };
    for (const list of ranks) pack(list, list.map((v, i) => i * 0));
    for (let sweep = 0; sweep < 6; sweep++) {
      const downward = sweep % 2 === 0;
      const sequence = downward ? ranks : [...ranks].reverse();
      for (const list of sequence) {
        pack(list, list.map((v) => {
          const near = [...vertices[v].up, ...vertices[v].downs];
          return near.length ? mean(near, x) : x[v];
        }));
      }
    }
    let low = Infinity;
    let high = -Infinity;
    vertices.forEach((vertex, v) => {
      low = Math.min(low, x[v] - vertex.size / 2);
      high = Math.max(high, x[v] + vertex.size / 2);
    });
    // positions along: each rank as thick as its thickest box
    const RANK_GAP = 44;
    const start = [];
    const thickness = [];
    let total = 0;
    ranks.forEach((list, r) => {
      start[r] = total;
      thickness[r] = 0;
      for (const v of list) if (vertices[v].name) thickness[r] = Math.max(thickness[r], along(contents[vertices[v].name]));
      total += thickness[r] + RANK_GAP;
    });
    total -= RANK_GAP;
    const boxes = {};
    const centre = {};
    vertices.forEach((vertex, v) => {
      const c = x[v] - low;
      if (vertex.name) {
        const box = contents[vertex.name];
        const a = start[vertex.rank] + (thickness[vertex.rank] - along(box)) / 2;
        boxes[vertex.name] = down ? { x: c - box.w / 2, y: a, w: box.w, h: box.h } : { x: a, y: c - box.h / 2, w: box.w, h: box.h };
      }
      centre[v] = c;
    });
    const point = (v, end) => { // where an edge leaves (end false) or enters a vertex
      const vertex = vertices[v];
      if (vertex.name) {
        const box = boxes[vertex.name];
        return down ? [box.x + box.w / 2, end ? box.y : box.y + box.h] : [end ? box.x : box.x + box.w, box.y + box.h / 2];
      }
      const a = start[vertex.rank];
      return down ? [centre[v], a] : [a, centre[v]];
    };
    const paths = routes.map((chain, k) => {
      let previous = point(chain[0], false);
      let d = `M${previous[0]},${previous[1]}`;
      const target = point(chain[chain.length - 1], true);
      for (let i = 1; i < chain.length; i++) {
        const next = i === chain.length - 1 ? (down ? [target[0], target[1] - 7] : [target[0] - 7, target[1]]) : point(chain[i], true);
        const middle = down ? (previous[1] + next[1]) / 2 : (previous[0] + next[0]) / 2;
        d += down ? `C${previous[0]},${middle} ${next[0]},${middle} ${next[0]},${next[1]}`
          : `C${middle},${previous[1]} ${middle},${next[1]} ${next[0]},${next[1]}`;
        previous = next;
      }
      return { d, last: previous, end: target, label: null, edge: model.edges[k] };
    });
    return down ? { boxes, paths, width: high - low, height: total, direction }
      : { boxes, paths, width: total, height: high - low, direction };
  }

  function edgeLabel(edge) {
    const grad = decode(edge.grad);
    return edge.grad === null || isArray(grad) ? "" : num(grad);
  }

  /** The zoom at which ``layout`` and its margin fit the canvas (at most MAX_ZOOM). */
  function fitZoom(layout) {
    const rect = $("canvas").getBoundingClientRect();
    return Math.min(MAX_ZOOM, rect.width / (layout.width + 2 * MARGIN), rect.height / (layout.height + 2 * MARGIN));
  }

  /** The layout in the direction that shows the graph largest (left to right where both fit). */
  function chooseLayout(contents) {
    const lay = model.names.length <= GRAPHVIZ_LIMIT ? graphvizLayout : layeredLayout;
    const across = lay(contents, "LR");
    const downwards = lay(contents, "TB");
    return fitZoom(downwards) > fitZoom(across) + 1e-9 ? downwards : across;
  }

  // --- drawing -------------------------------------------------------------------------------

  function escapeXml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  /** The SVG markup of the layout: edges under boxes. The heatmaps are added as they come into
   *  view, and so are the boxes' texts where ``lazy`` (for graphs of more than GRAPHVIZ_LIMIT boxes). */
  function svgMarkup(layout, contents, lazy) {
    const parts = [];
    parts.push(`<svg xmlns="${SVG_NS}" viewBox="${-MARGIN} ${-MARGIN} ${layout.width + 2 * MARGIN} ${layout.height + 2 * MARGIN}">`);
    parts.push('<g class="edges">');
    for (const path of layout.paths) {
      const { from, to } = path.edge;
      const [x1, y1] = path.last;
      const [x2, y2] = path.end || path.last;
      const angle = Math.atan2(y2 - y1, x2 - x1);
      const length = Math.max(7, Math.hypot(x2 - x1, y2 - y1));
      const tipX = x1 + Math.cos(angle) * length;
      const tipY = y1 + Math.sin(angle) * length;
      const side = 3.5;
      const arrow = [[tipX, tipY], [x1 - Math.sin(angle) * side, y1 + Math.cos(angle) * side],
        [x1 + Math.sin(angle) * side, y1 - Math.cos(angle) * side]].map((p) => p.map((n) => n.toFixed(1)).join(",")).join(" ");
      parts.push(`<g class="edge" data-from="${escapeXml(from)}" data-to="${escapeXml(to)}"><path d="${path.d}"/>` +
        `<polygon points="${arrow}"/>`);
      const label = edgeLabel(path.edge);
      if (label && path.label) {
        parts.push(`<text class="grad-text" x="${path.label[0].toFixed(1)}" y="${(path.label[1] + 4).toFixed(1)}" ` +
          `text-anchor="middle" font-size="${SMALL_FONT}">${escapeXml(label)}</text>`);
      }
      parts.push("</g>");
    }
    parts.push('</g><g class="boxes">');
    for (const name of model.names) {
      const box = layout.boxes[name];
      const kind = model.entries[name].op === "input" ? "input" : "op";
      const output = name === data.backward.output ? " output" : "";
      parts.push(`<g class="node ${kind}${output}" data-name="${escapeXml(name)}" transform="translate(${box.x.toFixed(1)},${box.y.toFixed(1)})">` +
        `<rect class="box" width="${box.w}" height="${box.h}" rx="6"/>`);
      if (lazy) {
        parts.push("</g>");
        continue;
      }
      parts.push(boxMarkup(contents[name]));
      parts.push("</g>");
    }
    parts.push("</g></svg>");
    return parts.join("");
  }

  /** The SVG markup of a box's text and heatmap frames (the heatmaps are added as they come into view). */
  function boxMarkup(content) {
    const parts = [];
    for (const line of content.lines) {
      parts.push(`<text class="${line.cls}" x="${PAD}" y="${line.y.toFixed(1)}" font-size="${line.size}">${escapeXml(line.text)}</text>`);
    }
    for (const heat of content.heats) {
      parts.push(`<text class="caption ${heat.part === "grad" ? "grad-text" : "value-text"}" x="${PAD + heat.x}" ` +
        `y="${(heat.y - 4).toFixed(1)}" font-size="${SMALL_FONT}">${escapeXml(heat.caption)}</text>` +
        `<rect class="heat-frame" x="${PAD + heat.x - 0.5}" y="${heat.y - 0.5}" width="${heat.w + 1}" height="${heat.h + 1}"/>`);
    }
    return parts.join("");
  }

  /** Draw the heatmaps (and, where lazy, the texts) of the boxes in or near view that have none yet. */
  function paintVisible() {
    if (!svg || !drawing) return;
    const marginX = view.w * 0.5;
    const marginY = view.h * 0.5;
    for (const name of model.names) {
      const group = svg.cgraphNodes[name];
      if (group.painted) continue;
      const box = drawing.boxes[name];
      if (box.x > view.x + view.w + marginX || box.x + box.w < view.x - marginX ||
        box.y > view.y + view.h + marginY || box.y + box.h < view.y - marginY) continue;
      group.painted = true;
      if (drawing.lazy) group.insertAdjacentHTML("beforeend", boxMarkup(drawing.contents[name]));
      for (const heat of drawing.contents[name].heats) {
        const image = document.createElementNS(SVG_NS, "image");
        image.setAttribute("class", `heat ${heat.part === "grad" ? "grad-text" : "value-text"}`);
        image.setAttribute("x", String(PAD + heat.x));
        image.setAttribute("y", String(heat.y));
        image.setAttribute("width", String(heat.w));
        image.setAttribute("height", String(heat.h));
        image.setAttribute("preserveAspectRatio", "none");
        image.setAttribute("href", heatCanvas(heat.array).toDataURL());
        image.dataset.part = heat.part;
        group.appendChild(image);
      }
    }
    drawMinimap();
  }

  function schedulePaint() {
    if (painting) return;
    painting = true;
    requestAnimationFrame(() => {
      painting = false;
      paintVisible();
    });
  }

  async function draw() {
    if (data.error) {
      if (svg) svg.remove();
      svg = null;
      drawing = null;
      showMessage(data.error, true);
      $("rule").textContent = "";
      $("panel").textContent = "";
      $("minimap").hidden = true;
      $("title").textContent = `cgraph: ${data.file}`;
      document.body.dataset.state = "error";
      return;
    }
    model = buildModel();
    $("title").textContent = `cgraph: ${data.file}, output '${data.backward.output}', dout = ${inline(data.backward.dout)}`;
    $("warnings").textContent = (data.warnings || []).join("\n");
    const started = performance.now();
    if (!vizInstance && model.names.length <= GRAPHVIZ_LIMIT) vizInstance = await Viz.instance();
    const contents = {};
    for (const name of model.names) contents[name] = boxContents(name);
    const layout = chooseLayout(contents);
    layout.contents = contents;
    layout.lazy = model.names.length > GRAPHVIZ_LIMIT;
    const previous = svg;
    const keepView = previous && drawing && view && Math.abs(drawing.width - layout.width) < 1 &&
      Math.abs(drawing.height - layout.height) < 1;
    drawing = layout;
    const holder = document.createElement("div");
    holder.innerHTML = svgMarkup(layout, contents, layout.lazy);
    svg = holder.firstChild;
    svg.setAttribute("class", `direction-${layout.direction}`);
    const box = svg.viewBox.baseVal;
    home = { x: box.x, y: box.y, w: box.width, h: box.height };
    annotate();
    if (previous) previous.remove();
    showMessage("", false);
    $("canvas").insertBefore(svg, $("minimap"));
    if (selected === null || !(selected in model.entries)) selected = data.backward.output;
    if (keepView) setView();
    else openView();
    const slider = $("slider");
    slider.max = String(positions() - 1);
    if (position > positions() - 1) position = positions() - 1;
    go(position);
    paintVisible();
    document.body.dataset.layoutMs = String(Math.round(performance.now() - started));
    document.body.dataset.direction = layout.direction;
    document.body.dataset.state = "ready";
  }

  function showMessage(text, error) {
    const message = $("message");
    message.textContent = text;
    message.className = error ? "error" : "";
    message.hidden = !text;
  }

  /** Index the SVG's boxes and edges by name. */
  function annotate() {
    svg.cgraphNodes = {};
    svg.cgraphEdges = [];
    for (const group of svg.querySelectorAll("g.node")) {
      svg.cgraphNodes[group.dataset.name] = group;
      group.shown = "";
    }
    for (const group of svg.querySelectorAll("g.edge")) {
      group.shown = "";
      svg.cgraphEdges.push(group);
    }
  }

  /** The whole graph in view if it can be read so (magnified at most MAX_ZOOM times); else
   *  zoomed to MIN_ZOOM at the output. */
  function openView() {
    const zoom = fitZoom(drawing);
    if (zoom >= MIN_ZOOM) {
      fit(zoom);
      return;
    }
    const rect = $("canvas").getBoundingClientRect();
    view = { x: 0, y: 0, w: rect.width / MIN_ZOOM, h: rect.height / MIN_ZOOM };
    centre(data.backward.output);
    // The mini-map goes in the corner away from the output, so that it hides none of it.
    const box = drawing.boxes[data.backward.output];
    $("minimap").classList.toggle("left", box.x + box.w / 2 > view.x + view.w / 2);
    $("minimap").classList.toggle("top", box.y + box.h / 2 > view.y + view.h / 2);
  }

  /** The whole graph in view, centred, at ``zoom`` (by default: as large as fits, at most MAX_ZOOM). */
  function fit(zoom) {
    const rect = $("canvas").getBoundingClientRect();
    const scale = zoom || Math.min(MAX_ZOOM, rect.width / home.w, rect.height / home.h);
    view = { w: rect.width / scale, h: rect.height / scale };
    view.x = home.x + (home.w - view.w) / 2;
    view.y = home.y + (home.h - view.h) / 2;
    setView();
  }

  /** Move the view (keeping its zoom) so that ``name``'s box is in the middle. */
  function centre(name) {
    const box = drawing && drawing.boxes[name];
    if (!box) return;
    view.x = box.x + box.w / 2 - view.w / 2;
    view.y = box.y + box.h / 2 - view.h / 2;
    setView();
  }

  /** Centre ``name``'s box if it is outside the visible part of the picture. */
  function reveal(name) {
    const box = drawing && drawing.boxes[name];
    if (!box) return;
    if (box.x + box.w < view.x || box.x > view.x + view.w || box.y + box.h < view.y || box.y > view.y + view.h) centre(name);
  }

  function setView() {
    if (!svg) return;
    // No further than the drawing's edge where it is bigger than the view; centred where it is smaller.
    for (const [x, w] of [["x", "w"], ["y", "h"]]) {
      view[x] = view[w] >= home[w] ? home[x] + (home[w] - view[w]) / 2
        : Math.max(home[x], Math.min(home[x] + home[w] - view[w], view[x]));
    }
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    schedulePaint();
  }

  // --- the mini-map: where the view is, when the graph does not fit ------------------------

  function drawMinimap() {
    const map = $("minimap");
    const whole = view.x <= home.x + 1 && view.y <= home.y + 1 && view.x + view.w >= home.x + home.w - 1 &&
      view.y + view.h >= home.y + home.h - 1;
    map.hidden = whole;
    if (whole) return;
    // The drawing's shape, but no side under 60 pixels: a long thin graph's map stays usable.
    const scale = Math.min(200 / home.w, 140 / home.h);
    const width = Math.max(60, Math.round(home.w * scale));
    const height = Math.max(60, Math.round(home.h * scale));
    const sx = width / home.w;
    const sy = height / home.h;
    if (map.width !== width || map.height !== height) {
      map.width = width;
      map.height = height;
    }
    const context = map.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, width, height);
    for (const name of model.names) {
      const box = drawing.boxes[name];
      context.fillStyle = name === data.backward.output ? "#8a6d00" : model.entries[name].op === "input" ? "#9dbbe0" : "#e8c76a";
      context.fillRect((box.x - home.x) * sx, (box.y - home.y) * sy, Math.max(1, box.w * sx), Math.max(1, box.h * sy));
    }
    context.strokeStyle = "#2c6fbb";
    context.lineWidth = 2;
    context.strokeRect((view.x - home.x) * sx, (view.y - home.y) * sy, view.w * sx, view.h * sy);
    map.scales = [sx, sy];
  }

  function minimapMove(event) {
    const map = $("minimap");
    const rect = map.getBoundingClientRect();
    view.x = home.x + (event.clientX - rect.left) / map.scales[0] - view.w / 2;
    view.y = home.y + (event.clientY - rect.top) / map.scales[1] - view.h / 2;
    setView();
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

  /** Set each box's and edge's classes for ``state``, touching only those that change. */
  function restyle(state) {
    svg.classList.toggle("stepping", state.kind !== "all");
    for (const name of model.names) {
      const group = svg.cgraphNodes[name];
      const classes = [
        state.current === name ? "current" : "",
        selected === name ? "selected" : "",
        valueKnown(state, name) ? "" : "unknown",
        gradKnown(state, name) ? "" : "no-grad",
      ].join(" ");
      if (group.shown !== classes) {
        group.shown = classes;
        for (const cls of ["current", "selected", "unknown", "no-grad"]) group.classList.toggle(cls, classes.includes(cls));
      }
    }
    for (const group of svg.cgraphEdges) {
      const { to } = group.dataset;
      const sent = edgeSent(state, to);
      const flowing = state.kind === "forward" && valueKnown(state, to);
      const classes = `${sent ? "sent" : ""} ${flowing ? "flowing" : ""} ${state.kind !== "all" && !sent ? "no-grad" : ""}`;
      if (group.shown !== classes) {
        group.shown = classes;
        group.classList.toggle("sent", sent);
        group.classList.toggle("flowing", flowing);
        group.classList.toggle("no-grad", state.kind !== "all" && !sent);
      }
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
      rule.appendChild(element("div", "Values in green, gradients in red; in the heatmaps, positive numbers are red, " +
        "negative blue and 0 white (hover for each number). Step with \u2192 and \u2190 (or the buttons and slider): " +
        "the forward pass node by node, then the backward pass as cgraph explain writes it. Click or hover on a box " +
        "for its numbers; drag to pan, the wheel zooms.", "note"));
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
    panel.appendChild(arraySection("value", entry.value, "value-part", name));
    panel.appendChild(arraySection("gradient", entry.grad, "grad-part", name));
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
      div.appendChild(arrayView(grad.grad, `d ${grad.input}`));
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
      if (list.length > 1 || isArray(decode(use.grad.grad))) div.appendChild(arrayView(use.grad.grad, `from ${use.user}`));
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

  function arraySection(title, value, className, name) {
    const which = title === "value" ? "value" : "grad";
    const whole = loaded.get(`${name}\n${which}`);
    const array = decode(whole || value);
    const section = element("div", undefined, `${className} section`);
    section.appendChild(element("h3", isArray(array) ? `${title} ${shapeText(array.shape)}` : title));
    section.appendChild(arrayView(whole || value, `${name} ${title}`, { name, which }));
    return section;
  }

  /** Served live: a button that fetches a sampled array whole from the server (of the same
   *  version of the data as the page shows) and puts its view in place of ``wrap``. */
  function loadButton(wrap, array, label, source) {
    const button = element("button", `load all ${array.size.toLocaleString("en")} values`, "load-all");
    button.type = "button";
    button.addEventListener("click", async () => {
      const asked = version;
      button.disabled = true;
      button.textContent = "loading\u2026";
      let failure;
      try {
        const query = `name=${encodeURIComponent(source.name)}&which=${source.which}&have=${encodeURIComponent(asked || "")}`;
        const response = await fetch(`/array?${query}`, { cache: "no-store" });
        if (response.ok && version === asked) {
          const whole = await response.json();
          loaded.set(`${source.name}\n${source.which}`, whole);
          if (wrap.isConnected) wrap.replaceWith(arrayView(whole, label));
          return;
        }
        failure = response.status === 409 || version !== asked
          ? "the graph has changed since this page was drawn: it is being drawn again with the new values"
          : `the server has no ${source.which} of ${source.name} (HTTP ${response.status})`;
      } catch (error) {
        failure = "the server does not answer (is cgraph serve still running?)";
      }
      button.remove();
      wrap.insertBefore(element("div", `cannot load all the values: ${failure}`, "note load-failed"), wrap.children[1] || null);
    });
    return button;
  }

  function jsonNumber(x) {
    return Number.isFinite(x) ? x : Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
  }

  /** A value: a number, or a heatmap and a scrollable table of its numbers (for a summarised array,
   *  its minimum and maximum and its strided sample, and served live, a button that loads it whole
   *  where ``source``, {name, which: "value" | "grad"}, says which entry's array it is). */
  function arrayView(value, label, source) {
    const wrap = element("div", undefined, "array-view");
    const array = decode(value);
    if (!isArray(array)) {
      wrap.appendChild(line(num(array)));
      wrap.dataset.values = JSON.stringify([array]);
      return wrap;
    }
    if (array.step) {
      const summary = `${array.size.toLocaleString("en")} elements, min ${num(array.min)}, max ${num(array.max)}; ` +
        `shown: a strided sample of ${shapeText(array.sampleShape)} (every ${shapeText(array.step)} along the axes).`;
      if (config.live && source) {
        wrap.appendChild(element("div", summary, "note summary"));
        wrap.appendChild(loadButton(wrap, array, label, source));
      } else {
        const ways = config.live ? "" : "cgraph html --full, cgraph serve, or ";
        wrap.appendChild(element("div", `${summary} All the numbers: ${ways}` +
          "cgraph backward FILE --node NAME --full --format json.", "note summary"));
      }
    } else {
      wrap.dataset.values = JSON.stringify(Array.from(array.values, jsonNumber));
    }
    if (array.size > 1) wrap.appendChild(panelHeatmap(array, label));
    const shape = array.sampleShape;
    const columns = shape.length ? shape[shape.length - 1] : 1;
    const scroller = element("div", undefined, "array");
    const table = document.createElement("table");
    const rows = columns ? array.values.length / columns : 0;
    const lead = shape.slice(0, -1);
    const step = array.step || shape.map(() => 1);
    if (array.step) {
      const head = document.createElement("tr");
      if (lead.length) head.appendChild(element("th", ""));
      for (let c = 0; c < columns; c++) head.appendChild(element("th", String(c * step[step.length - 1])));
      table.appendChild(head);
    }
    const addRows = (from, to) => {
      for (let r = from; r < to; r++) {
        const tr = document.createElement("tr");
        if (lead.length) tr.appendChild(element("th", rowLabel(r, lead, step)));
        for (let c = 0; c < columns; c++) {
          const x = array.values[r * columns + c];
          const td = element("td", num(x));
          td.title = exact(x);
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

  function rowLabel(row, lead, step) {
    const index = [];
    for (let i = lead.length - 1; i >= 0; i--) {
      index.unshift((row % lead[i]) * step[i]);
      row = Math.floor(row / lead[i]);
    }
    return lead.length === 1 ? String(index[0]) : `[${index.join(", ")}, :]`;
  }

  /** A heatmap of the array for the panel, with its colour scale; hover names each element. */
  function panelHeatmap(array, label) {
    const wrap = element("div", undefined, "heatmap");
    const canvas = heatCanvas(array);
    // Square cells of up to 16 pixels in at most 320; a long thin array's cells are widened to
    // keep its short side at least 48 pixels (or 16 a cell), so that it can be seen and hovered.
    const scale = Math.max(1, Math.min(16, Math.floor(320 / Math.max(canvas.width, canvas.height))));
    const side = (cells) => Math.min(320, Math.max(cells * scale, Math.min(cells * 16, 48)));
    canvas.style.width = `${side(canvas.width)}px`;
    canvas.style.height = `${side(canvas.height)}px`;
    canvas.heat = { array, label };
    wrap.appendChild(canvas);
    const limit = limitOf(array);
    const legend = element("div", undefined, "scale");
    legend.appendChild(element("span", "", "bar"));
    legend.appendChild(element("span", `${num(-limit)} \u2026 0 \u2026 ${num(limit)}`));
    wrap.appendChild(legend);
    return wrap;
  }

  // --- hover on heatmaps: the number at each element ------------------------------------------

  function showTip(event) {
    const tip = $("tip");
    const target = event.target;
    let heat = null;
    if (target.heat) heat = target.heat;
    else if (target.classList && target.classList.contains("heat")) {
      const name = target.closest("g.node").dataset.name;
      const entry = model.entries[name];
      const part = target.dataset.part;
      heat = { array: decode(part === "grad" ? entry.grad : entry.value), label: `${name} ${part === "grad" ? "gradient" : "value"}` };
    }
    if (!heat) {
      tip.hidden = true;
      return;
    }
    const rect = target.getBoundingClientRect();
    const { rows, cols } = grid(heat.array);
    const r = Math.floor((event.clientY - rect.top) / rect.height * rows);
    const c = Math.floor((event.clientX - rect.left) / rect.width * cols);
    const found = elementAt(heat.array, r, c);
    if (!found) {
      tip.hidden = true;
      return;
    }
    tip.textContent = `${heat.label} [${found.index.join(", ")}] = ${exact(found.value)}`;
    tip.hidden = false;
    tip.style.left = `${Math.min(window.innerWidth - tip.offsetWidth - 4, event.clientX + 12)}px`;
    tip.style.top = `${event.clientY + 14}px`;
  }

  // --- pan, zoom, selection and keys ------------------------------------------------------

  function nameAt(target) {
    const group = target.closest && target.closest("g.node");
    return group ? group.dataset.name : null;
  }

  function setUpEvents() {
    const canvas = $("canvas");
    const map = $("minimap");
    let drag = null;
    let mapDrag = false;
    map.addEventListener("pointerdown", (event) => {
      event.stopPropagation();
      mapDrag = true;
      map.setPointerCapture(event.pointerId);
      minimapMove(event);
    });
    map.addEventListener("pointermove", (event) => {
      event.stopPropagation();
      if (mapDrag) minimapMove(event);
    });
    map.addEventListener("pointerup", (event) => {
      event.stopPropagation();
      mapDrag = false;
    });
    canvas.addEventListener("pointerdown", (event) => {
      if (!view) return;
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
          $("tip").hidden = true;
          const scale = unitsPerPixel();
          view.x = drag.view.x - dx * scale;
          view.y = drag.view.y - dy * scale;
          setView();
        }
        return;
      }
      const under = document.elementFromPoint(event.clientX, event.clientY) || event.target;
      showTip({ target: under, clientX: event.clientX, clientY: event.clientY });
      const name = nameAt(under);
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
      if (name) select(name);
    });
    canvas.addEventListener("pointerleave", () => {
      $("tip").hidden = true;
      if (hovered) {
        hovered = null;
        showPanel();
      }
    });
    $("panel").addEventListener("mousemove", showTip);
    $("panel").addEventListener("mouseleave", () => { $("tip").hidden = true; });
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
        select(data.backward ? data.backward.output : null);
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
          loaded.clear();
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
