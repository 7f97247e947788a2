//! Azure streams are OpenAI's (decoded by `openai::stream::Decoder`). The first event often
//! has `choices: []` and only `prompt_filter_results`; it is passed on as a chunk, as Azure
//! sent it, and `ChunkAccumulator` skips it when assembling.
