// Settings of the storage clients read from the environment (credentials, endpoints, retry and
// upload tuning): one reader for plain values and one strict reader for numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace zerotune::storage {

// The variable's value, "" when it is unset.
std::string env_or_empty(const char* name);

// The whole number in variable `name`; nullopt when it is unset or empty. Fails, naming the
// variable, the accepted range and the value, unless the value is a decimal integer in
// [min, max]. `range` says the range in the message when plain numbers would not ("5 MiB to
// 5 GiB (S3's part limits)"); empty: "<min>-<max>".
std::optional<int64_t> env_integer(const char* name, int64_t min, int64_t max,
                                   const std::string& range = "");

}  // namespace zerotune::storage
