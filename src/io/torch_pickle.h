// Reads torch.save files (the zip format of PyTorch >= 1.6) that hold a dict or OrderedDict of
// tensors, such as an nn.Module's state_dict(). Not a general unpickler: anything else is refused.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lens {

/// Entries of the dict in file order. Throws ModelError naming the file for anything else.
std::vector<std::pair<std::string, at::Tensor>> read_torch_tensor_dict(const std::filesystem::path& path);

}  // namespace lens
