#pragma once
namespace CLI {
class App;
}

namespace mriae {

// `mriae conform`: writes a volume as training sees it with --conform (reoriented to RAS, resampled to
// isotropic voxels), to look at it or to check it against nibabel.
void add_conform_command(CLI::App& app);

}  // namespace mriae
