//! The chat-completions wire format (OpenAI's, which llama.cpp server,
//! vLLM and Ollama speak too): the request, the whole answer, the streamed
//! chunks, and the `[DONE]` that ends a stream.

use serde::{Deserialize, Serialize};

/// Who says a [`ChatMessage`].
///
/// ```
/// use abacus::llm::ChatRole;
/// assert_eq!(serde_json::to_string(&ChatRole::System).unwrap(), "\"system\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// Instructions for the model.
    System,
    /// The person asking.
    User,
    /// The model (earlier turns of a conversation).
    Assistant,
}

/// One message of a conversation.
///
/// ```
/// use abacus::llm::ChatMessage;
/// let m = ChatMessage::user("why is 0! = 1?");
/// assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::json!({"role": "user", "content": "why is 0! = 1?"}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who says it.
    pub role: ChatRole,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    ///
    /// ```
    /// let m = abacus::llm::ChatMessage::system("Answer briefly.");
    /// assert_eq!(m.role, abacus::llm::ChatRole::System);
    /// ```
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::System,
            content: content.into(),
        }
    }

    /// A user message.
    ///
    /// ```
    /// let m = abacus::llm::ChatMessage::user("2 + 2?");
    /// assert_eq!(m.content, "2 + 2?");
    /// ```
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::User,
            content: content.into(),
        }
    }
}

/// Tokens a call used, from the provider's `usage` field.
///
/// ```
/// let u: abacus::llm::Usage = serde_json::from_str(r#"{"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}"#).unwrap();
/// assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 7));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Tokens in (the prompt).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens out (the answer).
    #[serde(default)]
    pub completion_tokens: u64,
}

/// `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(super) struct ChatRequest<'a> {
    pub(super) model: &'a str,
    pub(super) messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
    /// Asks for a last chunk with `usage` (OpenAI, vLLM, Ollama; others ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f32>,
}

#[derive(Debug, Serialize)]
pub(super) struct StreamOptions {
    pub(super) include_usage: bool,
}

/// A whole (non-streamed) answer.
#[derive(Debug, Deserialize)]
pub(super) struct ChatResponse {
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) choices: Vec<Choice>,
    #[serde(default)]
    pub(super) usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub(super) message: Option<ChoiceMessage>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChoiceMessage {
    #[serde(default)]
    pub(super) content: Option<String>,
}

/// One streamed chunk (`data: {...}`); the last may carry only `usage`, an
/// error may come instead of a chunk.
#[derive(Debug, Deserialize)]
pub(super) struct ChatChunk {
    #[serde(default)]
    pub(super) choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub(super) usage: Option<Usage>,
    #[serde(default)]
    pub(super) error: Option<ErrorBody>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChunkChoice {
    #[serde(default)]
    pub(super) delta: Option<Delta>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub(super) content: Option<String>,
}

/// `{"error": {"message": ...}}` of a failed call (OpenAI and the local
/// servers; Ollama and some proxies send `{"error": "text"}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorBody {
    Object {
        #[serde(default)]
        message: Option<String>,
    },
    Text(String),
}

impl ErrorBody {
    pub(super) fn message(&self) -> Option<&str> {
        match self {
            ErrorBody::Object { message } => message.as_deref(),
            ErrorBody::Text(t) => Some(t),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    pub(super) error: ErrorBody,
}

/// The `data` of the event that ends a stream.
pub(super) const DONE: &str = "[DONE]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_leave_out_what_is_not_set() {
        let messages = [ChatMessage::user("hi")];
        let r = ChatRequest {
            model: "m",
            messages: &messages,
            stream: false,
            stream_options: None,
            max_tokens: None,
            temperature: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        );
        let r = ChatRequest {
            stream: true,
            stream_options: Some(StreamOptions {
                include_usage: true,
            }),
            max_tokens: Some(5),
            ..r
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_tokens"], 5);
    }

    #[test]
    fn answers_chunks_and_errors_parse() {
        let a: ChatResponse = serde_json::from_str(
            r#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,
            "message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(
            a.choices[0].message.as_ref().unwrap().content.as_deref(),
            Some("4")
        );
        assert_eq!(a.usage.unwrap().completion_tokens, 1);
        let c: ChatChunk =
            serde_json::from_str(r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#).unwrap();
        assert_eq!(
            c.choices[0].delta.as_ref().unwrap().content.as_deref(),
            Some("Hel")
        );
        let c: ChatChunk =
            serde_json::from_str(r#"{"choices":[],"usage":{"prompt_tokens":2}}"#).unwrap();
        assert_eq!(c.usage.unwrap().prompt_tokens, 2);
        let e: ErrorEnvelope =
            serde_json::from_str(r#"{"error":{"message":"no such model","type":"x"}}"#).unwrap();
        assert_eq!(e.error.message(), Some("no such model"));
        let e: ErrorEnvelope = serde_json::from_str(r#"{"error":"model not found"}"#).unwrap();
        assert_eq!(e.error.message(), Some("model not found"));
    }
}
