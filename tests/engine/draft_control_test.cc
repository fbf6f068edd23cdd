// DraftControl's cost model counts the drafter's own time, and the shadow proposals scored while drafting
// is off are held to a share of the plain steps' time (engine/draft_control.h).
#include <gtest/gtest.h>

#include "engine/draft_control.h"

namespace g4 {
namespace {

// Every draft of 2 accepted; a step takes 1 s, a verify of 2 or 3 tokens 1.2 s.
DraftControl always_accepted(double draft_seconds_per_token) {
  DraftControl c(2, 0, 0.5, true);
  for (int i = 0; i < 3; ++i) {
    c.time_forward(1, 1.0);
    c.time_forward(2, 1.2);
    c.time_forward(3, 1.2);
    c.time_draft(2, 2 * draft_seconds_per_token, false);
  }
  for (int i = 0; i < 20; ++i) c.observe(2, 2, 2, false, i);
  return c;
}

TEST(DraftControl, CostCountsTheDraftersTime) {
  DraftStats st, st2;
  DraftControl free = always_accepted(0.0);
  free.update(100, st);
  EXPECT_NEAR(free.cost(2), 1.2, 1e-9);
  EXPECT_EQ(free.length(), 2);  // 3 tokens per 1.2 steps
  // Drafting a token costs 1.5 steps: 2 drafts cost 1.2 + 3 = 4.2 steps for 3 tokens, 1 costs 2.7 for 2.
  DraftControl slow = always_accepted(1.5);
  EXPECT_NEAR(slow.cost(2), 4.2, 1e-9);
  EXPECT_NEAR(slow.cost(1), 2.7, 1e-9);
  slow.update(100, st2);
  EXPECT_EQ(slow.length(), 0) << "a drafter slower than it saves must keep drafting off";
}

TEST(DraftControl, ShadowProposalsAreHeldToATenthOfThePlainSteps) {
  DraftControl c(2, 0, 0.5, true);
  EXPECT_TRUE(c.may_shadow());
  c.time_draft(1, 0.35, true);  // a shadow proposal of 0.35 s
  EXPECT_FALSE(c.may_shadow());
  int steps = 0;
  while (!c.may_shadow() && steps < 100) c.off_step(1.0), ++steps;
  EXPECT_EQ(steps, 4);  // 0.1 s per 1 s step repays 0.35 s after 4 steps
  // A free drafter (n-gram) is always scored; the budget saved meanwhile is capped at 16 steps' share.
  for (int i = 0; i < 1000; ++i) c.off_step(1.0), c.time_draft(1, 0.0, true);
  EXPECT_TRUE(c.may_shadow());
  c.time_draft(1, 1.7, true);
  EXPECT_FALSE(c.may_shadow());
}

}  // namespace
}  // namespace g4
