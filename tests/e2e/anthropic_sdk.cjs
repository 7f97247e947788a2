// The official Anthropic TypeScript SDK (npm `@anthropic-ai/sdk`, pinned in scripts/e2e)
// against the gateway of tests/e2e/agents.py: messages, streaming, tools, countTokens and
// models.list, on the translated route (the built-in mock) and on the pass-through route (an
// Anthropic-format upstream). GATEWAY, KEY, SDK_VERSION and RESULTS come from the
// environment; each check's outcome is appended to RESULTS for the client matrix.

const fs = require("fs");
const Anthropic = require("@anthropic-ai/sdk").default;

const client = new Anthropic({ baseURL: process.env.GATEWAY, apiKey: process.env.KEY, maxRetries: 0 });
const CLIENT = `Anthropic TS SDK ${process.env.SDK_VERSION}`;
const WEATHER = {
  name: "get_weather",
  description: "Weather",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

function assert(ok, what) {
  if (!ok) throw new Error(what);
}

const checks = [
  ["/v1/messages → mock (translated)", "messages", async () => {
    const m = await client.messages.create({ model: "echo", max_tokens: 50, messages: [{ role: "user", content: "hello from node" }] });
    assert(m.content[0].type === "text" && m.content[0].text === "hello from node", JSON.stringify(m));
    assert(m.stop_reason === "end_turn" && m.usage.output_tokens > 0, JSON.stringify(m));
  }],
  ["/v1/messages → mock (translated)", "streaming", async () => {
    const stream = client.messages.stream({ model: "echo", max_tokens: 50, messages: [{ role: "user", content: "one two three" }] });
    const events = [];
    stream.on("streamEvent", (e) => events.push(e.type));
    const final = await stream.finalMessage();
    assert(final.content[0].text === "one two three", JSON.stringify(final));
    assert(events[0] === "message_start" && events.includes("message_stop"), events.join(","));
  }],
  ["/v1/messages → mock (translated)", "tools", async () => {
    const final = await client.messages
      .stream({ model: "tools", max_tokens: 200, tools: [WEATHER], messages: [{ role: "user", content: "Weather in Paris?" }] })
      .finalMessage();
    const uses = final.content.filter((b) => b.type === "tool_use");
    assert(uses.length > 0 && uses[0].name === "get_weather", JSON.stringify(final));
    assert(typeof uses[0].input === "object" && final.stop_reason === "tool_use", JSON.stringify(final));
  }],
  ["/v1/messages → mock (translated)", "countTokens", async () => {
    const raw = await client.messages
      .countTokens({ model: "echo", messages: [{ role: "user", content: "count these words please" }] })
      .withResponse();
    assert(raw.data.input_tokens > 0, JSON.stringify(raw.data));
    assert(raw.response.headers.get("x-switchyard-token-count") === "estimate", "the count is marked as an estimate");
  }],
  ["/v1/messages → mock (translated)", "models.list", async () => {
    const ids = [];
    for await (const model of client.models.list({ limit: 2 })) {
      assert(model.type === "model" && typeof model.display_name === "string", JSON.stringify(model));
      ids.push(model.id);
    }
    assert(ids.includes("echo") && ids.includes("claude-*"), ids.join(","));
  }],
  ["/v1/messages → Anthropic (pass-through)", "messages", async () => {
    const m = await client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: "hi" }] });
    assert(m.content[0].text === "pong from the agent upstream", JSON.stringify(m));
    assert(m.model === "claude-sonnet-4-5-20250929", "the upstream's answer, as it came: " + m.model);
  }],
  ["/v1/messages → Anthropic (pass-through)", "streaming", async () => {
    const final = await client.messages
      .stream({ model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: "hi" }] })
      .finalMessage();
    assert(final.content[0].text === "pong from the agent upstream", JSON.stringify(final));
    assert(final.usage.input_tokens === 321 && final.usage.output_tokens === 12, JSON.stringify(final.usage));
  }],
  ["/v1/messages → Anthropic (pass-through)", "countTokens", async () => {
    const raw = await client.messages
      .countTokens({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    assert(raw.data.input_tokens === 42, JSON.stringify(raw.data));
    assert(raw.response.headers.get("x-switchyard-token-count") === "exact", "the upstream counted");
  }],
  ["/v1/messages → OpenAI format (translated)", "tools", async () => {
    const m = await client.messages.create({
      model: "claude-opus-4-5", max_tokens: 50, tools: [WEATHER],
      messages: [{ role: "user", content: "hi" }],
    });
    assert(m.content[0].text === "pong from the agent upstream" && m.model === "claude-opus-4-5", JSON.stringify(m));
  }],
];

(async () => {
  let failed = 0;
  for (const [route, name, check] of checks) {
    let ok = true;
    try {
      await check();
      console.log(`ok      ${CLIENT}: ${route}: ${name}`);
    } catch (e) {
      ok = false;
      failed += 1;
      console.log(`FAILED  ${CLIENT}: ${route}: ${name}: ${e.stack || e}`);
    }
    fs.appendFileSync(process.env.RESULTS, JSON.stringify({ client: CLIENT, route, check: name, ok }) + "\n");
  }
  console.log(`${checks.length - failed} passed, ${failed} failed (${CLIENT})`);
  process.exit(failed ? 1 : 0);
})();
