//! The table of OpenAI-compatible vendors. Ids, key variables and API bases follow LiteLLM's
//! conventions, so a LiteLLM config means the same here. Quirks are the documented
//! departures from OpenAI's wire format; each names its source.

use super::{CompatVendor, Quirks};

/// Every OpenAI-compatible vendor this build knows, by id.
pub static VENDORS: &[CompatVendor] = &[
    CompatVendor {
        id: "groq",
        name: "Groq",
        base_url: "https://api.groq.com/openai/v1",
        key_env: &["GROQ_API_KEY"],
        key_required: true,
        // Groq's OpenAI-compatibility page: logprobs, logit_bias and top_logprobs are
        // rejected with a 400; failing before the call says which parameter and why.
        quirks: Quirks { unsupported: &["logprobs", "logit_bias", "top_logprobs"], ..Quirks::NONE },
        docs: "https://console.groq.com/docs/openai",
    },
    CompatVendor {
        id: "deepseek",
        name: "DeepSeek",
        base_url: "https://api.deepseek.com",
        key_env: &["DEEPSEEK_API_KEY"],
        key_required: true,
        quirks: Quirks { max_tokens_only: true, ..Quirks::NONE },
        docs: "https://api-docs.deepseek.com/",
    },
    CompatVendor {
        id: "together_ai",
        name: "Together AI",
        base_url: "https://api.together.xyz/v1",
        key_env: &["TOGETHERAI_API_KEY", "TOGETHER_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.together.ai/docs/openai-api-compatibility",
    },
    CompatVendor {
        id: "fireworks_ai",
        name: "Fireworks AI",
        base_url: "https://api.fireworks.ai/inference/v1",
        key_env: &["FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    },
    CompatVendor {
        id: "openrouter",
        name: "OpenRouter",
        base_url: "https://openrouter.ai/api/v1",
        key_env: &["OPENROUTER_API_KEY"],
        key_required: true,
        // It passes them on to Anthropic's (and Gemini's) models.
        quirks: Quirks { keeps_cache_control: true, ..Quirks::NONE },
        docs: "https://openrouter.ai/docs/api-reference/overview",
    },
    CompatVendor {
        id: "xai",
        name: "xAI",
        base_url: "https://api.x.ai/v1",
        key_env: &["XAI_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.x.ai/docs/api-reference",
    },
    CompatVendor {
        id: "perplexity",
        name: "Perplexity",
        base_url: "https://api.perplexity.ai",
        key_env: &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.perplexity.ai/api-reference/chat-completions-post",
    },
    CompatVendor {
        id: "cerebras",
        name: "Cerebras",
        base_url: "https://api.cerebras.ai/v1",
        key_env: &["CEREBRAS_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://inference-docs.cerebras.ai/resources/openai",
    },
    CompatVendor {
        id: "deepinfra",
        name: "DeepInfra",
        base_url: "https://api.deepinfra.com/v1/openai",
        key_env: &["DEEPINFRA_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://deepinfra.com/docs/openai_api",
    },
    CompatVendor {
        id: "nvidia_nim",
        name: "NVIDIA NIM",
        base_url: "https://integrate.api.nvidia.com/v1",
        key_env: &["NVIDIA_NIM_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.api.nvidia.com/nim/reference/llm-apis",
    },
    CompatVendor {
        id: "sambanova",
        name: "SambaNova",
        base_url: "https://api.sambanova.ai/v1",
        key_env: &["SAMBANOVA_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://docs.sambanova.ai/cloud/docs/capabilities/openai-compatibility",
    },
    CompatVendor {
        id: "moonshot",
        name: "Moonshot AI",
        base_url: "https://api.moonshot.ai/v1",
        key_env: &["MOONSHOT_API_KEY"],
        key_required: true,
        quirks: Quirks::NONE,
        docs: "https://platform.moonshot.ai/docs/api/chat",
    },
    CompatVendor {
        id: "ollama",
        name: "Ollama",
        base_url: "http://localhost:11434/v1",
        key_env: &["OLLAMA_API_KEY"],
        key_required: false,
        // LiteLLM configs give Ollama's root (`http://host:11434`); its OpenAI API is
        // under `/v1`.
        quirks: Quirks { base_suffix: "/v1", ..Quirks::NONE },
        docs: "https://github.com/ollama/ollama/blob/main/docs/openai.md",
    },
    CompatVendor {
        id: "hosted_vllm",
        name: "vLLM",
        base_url: "",
        key_env: &["HOSTED_VLLM_API_KEY"],
        key_required: false,
        quirks: Quirks::NONE,
        docs: "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    },
    CompatVendor {
        id: "lm_studio",
        name: "LM Studio",
        base_url: "http://localhost:1234/v1",
        key_env: &["LM_STUDIO_API_KEY"],
        key_required: false,
        quirks: Quirks::NONE,
        docs: "https://lmstudio.ai/docs/app/api/endpoints/openai",
    },
];
