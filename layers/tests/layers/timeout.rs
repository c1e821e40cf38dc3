use std::time::Duration;

use abacus_layers::timeout::{TimeoutError, TimeoutKind, TimeoutLayer};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

use crate::common::*;

fn slow_unary(
    delay: Duration,
) -> impl tower::Service<u64, Response = Resp, Error = std::io::Error, Future = impl Send> + Clone {
    service_fn(move |n: u64| async move {
        tokio::time::sleep(delay).await;
        if n == 0 {
            Err(std::io::Error::other("zero"))
        } else {
            Ok(Resp::Unary(n as u32))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn unary_request_times_out() {
    let svc = TimeoutLayer::new(secs(1)).layer(slow_unary(secs(5)));
    let start = Instant::now();
    match svc.oneshot(1).await {
        Err(TimeoutError::Elapsed(e)) => {
            assert_eq!(e.kind(), TimeoutKind::Request);
            assert_eq!(e.after(), secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn inner_errors_are_told_apart() {
    let svc = TimeoutLayer::new(secs(10)).layer(slow_unary(secs(1)));
    let err = svc.clone().oneshot(0).await.unwrap_err();
    assert!(!err.is_elapsed());
    assert_eq!(err.into_inner().unwrap().to_string(), "zero");
    assert_eq!(svc.oneshot(3).await.unwrap().unary(), 3);
}

#[tokio::test(start_paused = true)]
async fn per_request_override() {
    let layer =
        TimeoutLayer::new(secs(1)).per_request_timeout(|n: &u64| (*n > 100).then(|| secs(10)));
    let svc = layer.layer(slow_unary(secs(5)));
    assert!(svc.clone().oneshot(1).await.unwrap_err().is_elapsed());
    assert_eq!(svc.oneshot(101).await.unwrap().unary(), 101);
}

#[tokio::test(start_paused = true)]
async fn override_can_shorten_and_no_default_means_no_timeout() {
    let layer = TimeoutLayer::default().per_request_timeout(|n: &u64| (*n == 1).then(|| ms(10)));
    let svc = layer.layer(slow_unary(secs(60)));
    assert!(svc.clone().oneshot(1).await.unwrap_err().is_elapsed());
    assert_eq!(svc.oneshot(2).await.unwrap().unary(), 2);
}

fn streaming(
    head: Duration,
    items: Vec<(Duration, u32)>,
) -> impl tower::Service<(), Response = Resp, Error = std::io::Error, Future = impl Send> + Clone {
    service_fn(move |_: ()| {
        let items = items.clone();
        async move {
            tokio::time::sleep(head).await;
            Ok(Resp::Stream(timed_stream(items)))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn stream_first_item_timeout_counts_from_request_start() {
    let layer = TimeoutLayer::new(secs(30)).first_item_timeout(secs(2));
    // Head after 1.5 s, first item 1 s later: 2.5 s > 2 s.
    let svc = layer.layer(streaming(ms(1500), vec![(secs(1), 1)]));
    let s = svc.oneshot(()).await.unwrap().stream();
    assert_eq!(
        collect(s).await,
        vec![Event::TimedOut(TimeoutKind::FirstItem)]
    );
}

#[tokio::test(start_paused = true)]
async fn stream_first_item_in_time() {
    let layer = TimeoutLayer::new(secs(30)).first_item_timeout(secs(2));
    let svc = layer.layer(streaming(ms(500), vec![(secs(1), 1), (secs(10), 2)]));
    let s = svc.oneshot(()).await.unwrap().stream();
    // No idle timeout: the slow second item is fine.
    assert_eq!(collect(s).await, vec![Event::Item(1), Event::Item(2)]);
}

#[tokio::test(start_paused = true)]
async fn stream_idle_timeout() {
    let layer = TimeoutLayer::new(secs(30)).idle_timeout(secs(1));
    let svc = layer.layer(streaming(
        ms(0),
        vec![(ms(900), 1), (ms(900), 2), (ms(1100), 3)],
    ));
    let start = Instant::now();
    let s = svc.oneshot(()).await.unwrap().stream();
    assert_eq!(
        collect(s).await,
        vec![
            Event::Item(1),
            Event::Item(2),
            Event::TimedOut(TimeoutKind::Idle)
        ]
    );
    assert_eq!(start.elapsed(), ms(2800));
}

#[tokio::test(start_paused = true)]
async fn request_timeout_does_not_cover_the_stream() {
    let layer = TimeoutLayer::new(secs(1));
    let svc = layer.layer(streaming(ms(100), vec![(secs(5), 1)]));
    let s = svc.oneshot(()).await.unwrap().stream();
    assert_eq!(collect(s).await, vec![Event::Item(1)]);
}

#[tokio::test(start_paused = true)]
async fn stream_head_counts_against_request_timeout() {
    let layer = TimeoutLayer::new(secs(1));
    let svc = layer.layer(streaming(secs(2), vec![]));
    assert!(svc.oneshot(()).await.unwrap_err().is_elapsed());
}

#[tokio::test(start_paused = true)]
async fn http_body_idle_timeout() {
    let layer = TimeoutLayer::new(secs(5)).idle_timeout(secs(1));
    let svc = layer.layer(service_fn(|_: ()| async {
        let frames = futures_util::stream::unfold(0u32, |n| async move {
            // One frame at once, then silence.
            if n == 0 {
                Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from("a"))), 1))
            } else {
                tokio::time::sleep(Duration::from_secs(60)).await;
                None
            }
        });
        Ok::<_, std::io::Error>(http::Response::new(StreamBody::new(frames)))
    }));
    let mut body = std::pin::pin!(svc.oneshot(()).await.unwrap().into_body());
    assert!(body.frame().await.unwrap().is_ok());
    match body.frame().await {
        Some(Err(TimeoutError::Elapsed(e))) => assert_eq!(e.kind(), TimeoutKind::Idle),
        other => panic!("expected an idle timeout, got {other:?}"),
    }
    assert!(body.frame().await.is_none());
}
