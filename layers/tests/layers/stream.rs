//! The stream wrappers on their own.

use std::sync::Arc;

use abacus_layers::stream::{
    GuardedBody, GuardedStream, StreamTimeouts, TimeoutBody, TimeoutStream, TrackEnd,
};
use abacus_layers::timeout::{TimeoutError, TimeoutKind};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::common::*;

#[tokio::test]
async fn guarded_stream_releases_on_drop() {
    let guard = Arc::new(());
    let (tx, s) = channel_stream();
    let mut s = GuardedStream::new(s, guard.clone());
    tx.send(1).unwrap();
    assert_eq!(s.next().await, Some(Event::Item(1)));
    assert_eq!(Arc::strong_count(&guard), 2);
    drop(s);
    assert_eq!(Arc::strong_count(&guard), 1);
}

#[tokio::test]
async fn guarded_stream_releases_at_end() {
    let guard = Arc::new(());
    let (tx, s) = channel_stream();
    let mut s = GuardedStream::new(s, guard.clone());
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(s.next().await, Some(Event::Item(1)));
    assert_eq!(s.next().await, None);
    assert_eq!(Arc::strong_count(&guard), 1);
    assert!(s.guard().is_none());
}

#[tokio::test]
async fn boxed_stream_track_end() {
    let guard = Arc::new(());
    let s: std::pin::Pin<Box<dyn futures_core::Stream<Item = u8> + Send>> =
        Box::pin(futures_util::stream::iter([1, 2]));
    let s = s.track_end(guard.clone());
    assert_eq!(Arc::strong_count(&guard), 2);
    assert_eq!(s.collect::<Vec<_>>().await, vec![1, 2]);
    assert_eq!(Arc::strong_count(&guard), 1);
}

#[tokio::test]
async fn guarded_body_releases_at_end_of_stream_body() {
    let guard = Arc::new(());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Frame<Bytes>, std::io::Error>>();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let res = http::Response::new(StreamBody::new(stream)).track_end(guard.clone());
    let mut body = std::pin::pin!(res.into_body());
    tx.send(Ok(Frame::data(Bytes::from("a")))).unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "a");
    assert_eq!(Arc::strong_count(&guard), 2);
    drop(tx);
    assert!(body.frame().await.is_none());
    assert_eq!(Arc::strong_count(&guard), 1);
}

#[tokio::test]
async fn guarded_body_releases_when_dropped() {
    let guard = Arc::new(());
    let body = GuardedBody::new(http_body_util::Full::new(Bytes::from("x")), guard.clone());
    assert_eq!(Arc::strong_count(&guard), 2);
    drop(body);
    assert_eq!(Arc::strong_count(&guard), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_stream_first_item() {
    let s = timed_stream(vec![(secs(3), 1)]);
    let t = StreamTimeouts::new().first_item(secs(2));
    let s = TimeoutStream::new(s, t, |e| Event::TimedOut(e.kind()));
    let start = tokio::time::Instant::now();
    let items: Vec<_> = s.collect().await;
    assert_eq!(items, vec![Event::TimedOut(TimeoutKind::FirstItem)]);
    assert_eq!(start.elapsed(), secs(2));
}

#[tokio::test(start_paused = true)]
async fn timeout_stream_idle() {
    let s = timed_stream(vec![(ms(500), 1), (ms(900), 2), (secs(5), 3)]);
    let t = StreamTimeouts::new().first_item(secs(1)).idle(secs(1));
    let s = TimeoutStream::new(s, t, |e| Event::TimedOut(e.kind()));
    let items: Vec<_> = s.collect().await;
    assert_eq!(
        items,
        vec![
            Event::Item(1),
            Event::Item(2),
            Event::TimedOut(TimeoutKind::Idle)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_stream_in_time_passes_everything() {
    let s = timed_stream(vec![(ms(900), 1), (ms(900), 2), (ms(900), 3)]);
    let t = StreamTimeouts::new().first_item(secs(1)).idle(secs(1));
    let s = TimeoutStream::new(s, t, |e| Event::TimedOut(e.kind()));
    let items: Vec<_> = s.collect().await;
    assert_eq!(items, vec![Event::Item(1), Event::Item(2), Event::Item(3)]);
}

#[tokio::test(start_paused = true)]
async fn timeout_body_idle_yields_error_frame_then_ends() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Frame<Bytes>, std::io::Error>>();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let mut body = std::pin::pin!(TimeoutBody::new(
        StreamBody::new(stream),
        StreamTimeouts::new().idle(secs(1))
    ));
    tx.send(Ok(Frame::data(Bytes::from("a")))).unwrap();
    assert!(body.frame().await.unwrap().is_ok());
    match body.frame().await {
        Some(Err(TimeoutError::Elapsed(e))) => {
            assert_eq!(e.kind(), TimeoutKind::Idle);
            assert_eq!(e.after(), secs(1));
        }
        other => panic!("expected an idle timeout, got {other:?}"),
    }
    assert!(body.frame().await.is_none());
    drop(tx);
}
