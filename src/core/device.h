// Where a buffer lives. The CPU backend is always built; the CUDA backend is compiled in when
// the toolkit is found (ZEROTUNE_CUDA), otherwise its entry points fail with a clear message.
#pragma once

#include <string>

namespace zerotune {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return Device{DeviceType::cpu, 0}; }
  static Device cuda(int index) { return Device{DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool operator==(const Device& other) const = default;
  std::string name() const;
};

// True when this binary was built with the CUDA backend.
bool cuda_backend_built();

}  // namespace zerotune
