// sepit page: sends the form to POST /v1/chat/completions with stream: true and renders the server-sent
// events as they arrive (text pieces, then the options' probabilities for closed-set questions). Finished
// turns are kept as a conversation: a follow-up question is sent with the earlier turns (same protein);
// changing the protein or "New conversation" starts again.
"use strict";

const EXAMPLES = [
  { question: "What is the function of this protein?" },
  { question: "Where in the cell is this protein located?" },
  { question: "Which biological process does this protein take part in?" },
  { question: "Does this protein bind DNA?", choices: "yes|no" },
  { question: "Is this protein an enzyme?", choices: "yes|no" },
];
const EXAMPLE_SEQUENCE = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASVSTVLTSKYR";

const $ = (id) => document.getElementById(id);
let conversation = []; // finished turns: { role, content }

function showConversation() {
  const list = $("conversation");
  list.replaceChildren();
  for (const turn of conversation) {
    const item = document.createElement("li");
    item.className = turn.role;
    item.textContent = turn.content;
    list.appendChild(item);
  }
  $("conversation-view").hidden = conversation.length === 0;
  $("new-conversation").hidden = conversation.length === 0;
  $("ask").textContent = conversation.length ? "Ask a follow-up" : "Ask";
}

function resetConversation() {
  conversation = [];
  showConversation();
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "status error" : "status";
}

function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function readStructure(file) {
  const name = file.name.toLowerCase();
  const gz = name.endsWith(".gz");
  const base = gz ? name.slice(0, -3) : name;
  const format = (base.endsWith(".cif") || base.endsWith(".mmcif") ? "cif" : "pdb") + (gz ? ".gz" : "");
  if (gz) return { content: bytesToBase64(new Uint8Array(await file.arrayBuffer())), format, encoding: "base64" };
  return { content: await file.text(), format, encoding: "text" };
}

async function buildRequest() {
  const protein = {};
  const sequence = $("sequence").value.trim();
  if (sequence) protein.sequence = sequence;
  const file = $("structure").files[0];
  if (file) protein.structure = await readStructure(file);
  const chain = $("chain").value.trim();
  if (chain) protein.chain = chain;
  const body = {
    model: $("model-name").textContent || "sepit",
    messages: [...conversation, { role: "user", content: $("question").value }],
    stream: true,
    max_tokens: Number($("max-tokens").value) || 128,
    protein,
  };
  const choices = $("choices").value.split("|").map((c) => c.trim()).filter((c) => c);
  if (choices.length) body.answer_choices = choices;
  return body;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function showOptions(probabilities, best) {
  const table = $("options");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (!probabilities) { table.hidden = true; return; }
  for (const [option, p] of Object.entries(probabilities).sort((a, b) => b[1] - a[1])) {
    const row = body.insertRow();
    if (option === best) row.className = "best";
    row.insertCell().textContent = option;
    row.insertCell().textContent = `${(100 * p).toFixed(1)} %`;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.round(200 * p)}px`;
    row.insertCell().appendChild(bar);
  }
  table.hidden = false;
}

function showStructure(info) {
  $("structure-info").textContent = info && info.chain
    ? `Structure: chain ${info.chain}, ${info.residues_with_point}/${info.length} residues with a point, identity ${info.identity}`
    : "";
}

// evidence (server started with --index): one row per hit, each accession linking to its UniProt entry
function showEvidence(sepit) {
  const table = $("evidence");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  const note = $("evidence-note");
  note.textContent = "";
  if (!sepit || !sepit.evidence) { table.hidden = true; return; }
  const cited = new Set(sepit.citations || []);
  for (const hit of sepit.evidence) {
    const row = body.insertRow();
    if (cited.has(hit.accession)) row.className = "best";
    const link = document.createElement("a");
    link.href = `https://www.uniprot.org/uniprotkb/${encodeURIComponent(hit.accession)}/entry`;
    link.textContent = `UniProt:${hit.accession}`;
    link.target = "_blank";
    link.rel = "noopener";
    row.insertCell().appendChild(link);
    row.insertCell().textContent = `${(100 * hit.identity).toFixed(0)} %`;
    row.insertCell().textContent = `${(100 * hit.query_coverage).toFixed(0)} %`;
    row.insertCell().textContent = Number(hit.evalue).toExponential(1);
    row.insertCell().textContent = hit.annotation;
  }
  table.hidden = sepit.evidence.length === 0;
  const notes = [];
  if (sepit.evidence.length === 0) notes.push("No annotated homolog found in the reference: answered without evidence.");
  if ((sepit.unsupported_citations || []).length) {
    notes.push(`Cited but not in the evidence (not a source): ${sepit.unsupported_citations.join(", ")}`);
  }
  note.textContent = notes.join(" ");
}

function handleEvent(data, state) {
  if (data === "[DONE]") { state.done = true; return; }
  const event = JSON.parse(data);
  if (event.error) throw new Error(event.error.message);
  const choice = event.choices && event.choices[0];
  if (choice && choice.delta && choice.delta.content) {
    state.text += choice.delta.content;
    $("answer").textContent = state.text.trimStart();
  }
  if (choice && choice.finish_reason && event.sepit) {
    showOptions(event.sepit.probabilities, event.sepit.choice);
    showStructure(event.sepit.structure);
    showEvidence(event.sepit);
    state.finish = choice.finish_reason;
  }
}

async function ask(event) {
  event.preventDefault();
  const button = $("ask");
  button.disabled = true;
  $("answer").textContent = "";
  showOptions(null);
  showStructure(null);
  showEvidence(null);
  setStatus("Sending…");
  const question = $("question").value;
  const started = performance.now();
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(await buildRequest()),
    });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch (_) { /* keep the status */ }
      throw new Error(message);
    }
    setStatus("Answering…");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const state = { text: "", done: false, finish: null };
    let buffer = "";
    while (!state.done) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (line.startsWith("data: ")) handleEvent(line.slice(6), state);
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(`Done in ${seconds} s${state.finish === "length" ? " (stopped at the token limit)" : ""}.`);
    conversation.push({ role: "user", content: question }, { role: "assistant", content: state.text.trim() });
    showConversation();
    document.body.dataset.state = "done";
  } catch (err) {
    setStatus(`Error: ${err.message}`, true);
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

async function init() {
  for (const [i, ex] of EXAMPLES.entries()) $("example").add(new Option(ex.question + (ex.choices ? ` (${ex.choices})` : ""), i));
  $("example").addEventListener("change", () => {
    const ex = EXAMPLES[$("example").value];
    if (!ex) return;
    $("question").value = ex.question;
    $("choices").value = ex.choices || "";
    if (!$("sequence").value.trim() && !$("structure").files.length) $("sequence").value = EXAMPLE_SEQUENCE;
  });
  $("clear-structure").addEventListener("click", () => { $("structure").value = ""; resetConversation(); });
  for (const id of ["sequence", "structure", "chain"]) $(id).addEventListener("input", resetConversation);
  $("structure").addEventListener("change", resetConversation);
  $("new-conversation").addEventListener("click", resetConversation);
  $("ask-form").addEventListener("submit", ask);
  try {
    const health = await (await fetch("/healthz")).json();
    $("model-name").textContent = health.model;
  } catch (_) { setStatus("Server not reachable", true); }
}

init();
