//! The A2A v1.0 operations, in one table: name, parameter decoder.

use super::json::params;
use super::request::{Call, PushCall};
use a2a::A2AError;

/// One A2A operation, independent of the binding that carries it.
///
/// ```
/// use abacus::protocol::Method;
/// assert_eq!(Method::GetTask.name(), "GetTask");
/// assert_eq!(Method::from_name("GetTask"), Some(Method::GetTask));
/// assert_eq!(Method::ALL.len(), 11);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `SendMessage`.
    SendMessage,
    /// `SendStreamingMessage`.
    SendStreamingMessage,
    /// `GetTask`.
    GetTask,
    /// `ListTasks`.
    ListTasks,
    /// `CancelTask`.
    CancelTask,
    /// `SubscribeToTask`.
    SubscribeToTask,
    /// `CreateTaskPushNotificationConfig`.
    CreateTaskPushNotificationConfig,
    /// `GetTaskPushNotificationConfig`.
    GetTaskPushNotificationConfig,
    /// `ListTaskPushNotificationConfigs`.
    ListTaskPushNotificationConfigs,
    /// `DeleteTaskPushNotificationConfig`.
    DeleteTaskPushNotificationConfig,
    /// `GetExtendedAgentCard`.
    GetExtendedAgentCard,
}

/// Decodes the proto-JSON parameters of one operation.
type Decode = fn(&str) -> Result<Call, A2AError>;

/// The one table of operations: the row of a method is at its discriminant
/// (a test checks it), so `name` and `decode` are an index.
const TABLE: [(Method, &str, Decode); 11] = [
    (Method::SendMessage, "SendMessage", |p| {
        Ok(Call::SendMessage(params(p)?))
    }),
    (Method::SendStreamingMessage, "SendStreamingMessage", |p| {
        Ok(Call::SendStreamingMessage(params(p)?))
    }),
    (Method::GetTask, "GetTask", |p| {
        Ok(Call::GetTask(params(p)?))
    }),
    (Method::ListTasks, "ListTasks", |p| {
        Ok(Call::ListTasks(params(p)?))
    }),
    (Method::CancelTask, "CancelTask", |p| {
        Ok(Call::CancelTask(params(p)?))
    }),
    (Method::SubscribeToTask, "SubscribeToTask", |p| {
        Ok(Call::SubscribeToTask(params(p)?))
    }),
    (
        Method::CreateTaskPushNotificationConfig,
        "CreateTaskPushNotificationConfig",
        |p| Ok(Call::PushConfig(PushCall::Create(params(p)?))),
    ),
    (
        Method::GetTaskPushNotificationConfig,
        "GetTaskPushNotificationConfig",
        |p| Ok(Call::PushConfig(PushCall::Get(params(p)?))),
    ),
    (
        Method::ListTaskPushNotificationConfigs,
        "ListTaskPushNotificationConfigs",
        |p| Ok(Call::PushConfig(PushCall::List(params(p)?))),
    ),
    (
        Method::DeleteTaskPushNotificationConfig,
        "DeleteTaskPushNotificationConfig",
        |p| Ok(Call::PushConfig(PushCall::Delete(params(p)?))),
    ),
    (Method::GetExtendedAgentCard, "GetExtendedAgentCard", |_| {
        Ok(Call::GetExtendedAgentCard)
    }),
];

impl Method {
    /// Every operation, in the order of the specification.
    pub const ALL: [Method; 11] = {
        let mut all = [Method::SendMessage; 11];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// The operation's name (the JSON-RPC method, the gRPC rpc).
    pub fn name(self) -> &'static str {
        TABLE[self as usize].1
    }

    /// The operation called `name`, if A2A v1.0 has one.
    pub fn from_name(name: &str) -> Option<Method> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(m, _, _)| *m)
    }

    /// Decodes the operation's parameters from their proto-JSON form
    /// (a JSON object), naming the offending field on error.
    ///
    /// ```
    /// use abacus::protocol::Method;
    /// let call = Method::GetTask.decode(r#"{"id":"t1"}"#).unwrap();
    /// assert_eq!(call.method(), Method::GetTask);
    /// assert_eq!(Method::GetTask.decode("{}").unwrap_err().code, -32602);
    /// ```
    pub fn decode(self, params: &str) -> Result<Call, A2AError> {
        (TABLE[self as usize].2)(params)
    }

    /// True for the operations answered with an event stream.
    pub fn is_streaming(self) -> bool {
        matches!(self, Method::SendStreamingMessage | Method::SubscribeToTask)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_sits_at_its_discriminant() {
        for (i, (method, name, _)) in TABLE.iter().enumerate() {
            assert_eq!(*method as usize, i, "{name}");
            assert_eq!(Method::from_name(name), Some(*method));
            assert_eq!(Method::ALL[i], *method);
        }
    }

    #[test]
    fn decoded_calls_report_their_method() {
        let bodies = [
            r#"{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"x"}]}}"#,
            r#"{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"x"}]}}"#,
            r#"{"id":"t"}"#,
            "{}",
            r#"{"id":"t"}"#,
            r#"{"id":"t"}"#,
            r#"{"taskId":"t","url":"https://hooks.example.com/a2a"}"#,
            r#"{"taskId":"t","id":"c"}"#,
            r#"{"taskId":"t"}"#,
            r#"{"taskId":"t","id":"c"}"#,
            "{}",
        ];
        for (method, body) in Method::ALL.into_iter().zip(bodies) {
            assert_eq!(method.decode(body).unwrap().method(), method);
        }
    }
}
