// Checking the zerotune::Error a call throws and the words its message must hold.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/check.h"

namespace zerotune {

// The message of the zerotune::Error that `body` throws; empty when it throws none.
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Fails the test unless `body` throws a zerotune::Error whose message contains `needle`.
inline void expect_error(const std::function<void()>& body, const std::string& needle) {
  try {
    body();
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace zerotune
